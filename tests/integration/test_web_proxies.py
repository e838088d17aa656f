"""X-Forwarded-For and X-Forwarded-Proto count only from [web] trusted_proxies: behind one, the
sign-in throttle, the sessions and the audit log see the client's address and the cookies are
Secure when the proxy says https; from anyone else both headers change nothing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from daemon.config import Settings
from daemon.store.database import Database
from daemon.store.tables import audit_log, web_sessions
from tests.integration.test_web_app import PASSWORD, Web, add_user, csrf_of, web_for

CLIENT, OTHER = "203.0.113.9", "198.51.100.7"


@pytest.fixture
def sqlite_db(make_settings: Callable[..., Settings]) -> Iterator[tuple[Settings, Database]]:
    settings = make_settings()
    database = Database(settings.database_url, lock_dir=settings.paths.locks)
    database.upgrade()
    yield settings, database
    database.close()


@pytest.fixture
async def behind_proxy(sqlite_db: tuple[Settings, Database]) -> AsyncIterator[Web]:
    """The test client (127.0.0.1) is a trusted proxy."""
    async with web_for(*sqlite_db, trusted_proxies=("127.0.0.0/8", "10.0.0.0/8")) as made:
        yield made


@pytest.fixture
async def direct(sqlite_db: tuple[Settings, Database]) -> AsyncIterator[Web]:
    """No proxies configured (the default): the test client is just a client."""
    async with web_for(*sqlite_db) as made:
        yield made


async def sign_in(web: Web, name: str, password: str, headers: dict[str, str]) -> tuple[int, str]:
    """(status, Set-Cookie of the answer) for a sign-in sent with these headers."""
    web.client.session.cookie_jar.clear()
    form = await web.client.get("/signin", headers=headers)
    # By hand: the jar would not send a Secure cookie over this plain-HTTP hop (the proxy's).
    cookie = {"Cookie": f"rosterdrop_signin={form.cookies['rosterdrop_signin'].value}"}
    answer = await web.client.post(
        "/signin", headers={**headers, **cookie}, allow_redirects=False,
        data={"csrf_token": csrf_of(await form.text()), "username": name, "password": password},
    )  # fmt: skip
    return answer.status, ";".join(answer.headers.getall("Set-Cookie", []))


def session_addresses(web: Web) -> list[str | None]:
    with web.db.read() as conn:
        return [r.address for r in conn.execute(sa.select(web_sessions.c.address))]


def forwarded(client: str, proto: str = "http") -> dict[str, str]:
    # As nginx writes it: what the client claimed, then the address the proxy saw.
    return {"X-Forwarded-For": f"192.0.2.66, {client}", "X-Forwarded-Proto": proto}


async def test_behind_a_trusted_proxy_the_throttle_locks_the_client_not_the_proxy(
    behind_proxy: Web,
) -> None:
    web = behind_proxy
    add_user(web.db, "north-admin", "north")
    add_user(web.db, "south-admin", "south")
    for _ in range(web.ctx.settings.signin_max_failures):
        status, _ = await sign_in(web, "north-admin", "wrong", forwarded(CLIENT))
        assert status == 401
    assert (await sign_in(web, "south-admin", PASSWORD, forwarded(CLIENT)))[0] == 429
    # Another client behind the same proxy is not locked out with the guesser.
    assert (await sign_in(web, "south-admin", PASSWORD, forwarded(OTHER)))[0] == 303
    assert session_addresses(web) == [OTHER]


async def test_a_trusted_proxys_https_makes_the_cookies_secure(behind_proxy: Web) -> None:
    web = behind_proxy
    add_user(web.db, "admin", "acme")
    status, cookies = await sign_in(web, "admin", PASSWORD, forwarded(CLIENT, "https"))
    assert status == 303
    assert "rosterdrop_session=" in cookies
    assert "Secure" in cookies
    status, cookies = await sign_in(web, "admin", PASSWORD, forwarded(CLIENT, "http"))
    assert status == 303
    assert "Secure" not in cookies


async def test_the_audit_log_records_the_client_behind_the_proxy(behind_proxy: Web) -> None:
    web = behind_proxy
    add_user(web.db, "admin", "acme")
    headers = forwarded(CLIENT)
    assert (await sign_in(web, "admin", PASSWORD, headers))[0] == 303
    page = await web.client.get("/tenants/acme/setup", headers=headers)
    token = csrf_of(await page.text())
    saved = await web.client.post(
        "/tenants/acme/setup/emails", headers=headers,
        data={"csrf_token": token, "emails": "it@acme.example.org"},
    )  # fmt: skip
    assert saved.status == 200
    with web.db.read() as conn:
        [address] = conn.execute(sa.select(audit_log.c.address)).scalars()
    assert address == CLIENT


async def test_without_trusted_proxies_the_headers_are_ignored(direct: Web) -> None:
    web = direct
    add_user(web.db, "north-admin", "north")
    add_user(web.db, "south-admin", "south")
    # A guesser who writes a new X-Forwarded-For each time is still one address.
    for n in range(web.ctx.settings.signin_max_failures):
        headers = forwarded(f"203.0.113.{n + 1}", "https")
        assert (await sign_in(web, "north-admin", "wrong", headers))[0] == 401
    status, _ = await sign_in(web, "south-admin", PASSWORD, forwarded(OTHER, "https"))
    assert status == 429
    web.clock.advance(timedelta(seconds=web.ctx.settings.signin_lock_seconds))
    status, cookies = await sign_in(web, "south-admin", PASSWORD, forwarded(OTHER, "https"))
    assert status == 303
    assert "Secure" not in cookies  # a client's word for https is not taken
    assert session_addresses(web) == ["127.0.0.1"]


async def test_an_untrusted_sender_is_not_a_proxy_even_when_another_one_is(
    sqlite_db: tuple[Settings, Database],
) -> None:
    async with web_for(*sqlite_db, trusted_proxies=("10.0.0.0/8",)) as web:
        add_user(web.db, "admin", "acme")
        status, cookies = await sign_in(web, "admin", PASSWORD, forwarded(CLIENT, "https"))
        assert status == 303
        assert "Secure" not in cookies
        assert session_addresses(web) == ["127.0.0.1"]


def test_a_bad_trusted_proxy_is_named_at_start_up(make_settings: Callable[..., Settings]) -> None:
    from daemon.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape("'10.0.0.0/33' is not an IP address")):
        make_settings(ROSTERDROP_WEB_TRUSTED_PROXIES="127.0.0.1, 10.0.0.0/33")
    assert make_settings(ROSTERDROP_WEB_TRUSTED_PROXIES="127.0.0.1, ::1").web.trusted_proxies == (
        "127.0.0.1", "::1",
    )  # fmt: skip
