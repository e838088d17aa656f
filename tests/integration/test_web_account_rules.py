"""Accounts in the Import Manager's application, in this process over a real database of each
kind: the TOTP step of the sign-in, "forgot password" and its one-time links, Bearer tokens on
/api/v1 — each bound at its edge, on the test's clock."""

from __future__ import annotations

import email
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from email import policy

import pyotp
import pytest
import sqlalchemy as sa

from daemon import accounts
from daemon.config import Settings
from daemon.errors import NotFound
from daemon.store import credentials, users
from daemon.store.database import Database
from daemon.store.tables import audit_log, outbox
from daemon.web.auth import TOTP_PENDING_SECONDS
from daemon.web.bearer import REFUSED
from daemon.web.throttle import RESET_MAX_REQUESTS, RESET_WINDOW_SECONDS, SigninThrottle
from daemon.web.views.account import FORGOT_MAX_USERS
from tests.integration.test_web_app import PASSWORD, START, Web, add_user, csrf_of, web_for

PUBLIC_URL = "http://roster.example.org"  # http: the test client sends no Secure cookie
NEW_PASSWORD = "a-brand-new-password"


@pytest.fixture
async def web(settings: Settings, db: Database) -> AsyncIterator[Web]:
    async with web_for(settings, db, public_url=PUBLIC_URL) as made:
        made.ctx.reset_throttle = SigninThrottle(
            made.ctx.reset_throttle.policy, clock=made.clock.monotonic
        )
        yield made


def set_email(db: Database, name: str, address: str) -> None:
    with db.write() as conn:
        conn.execute(sa.update(users.users).where(users.users.c.name == name).values(email=address))


def enrol(db: Database, name: str) -> pyotp.TOTP:
    with db.write() as conn:
        uri = accounts.enrol_totp(conn, users.get(conn, name))
    parsed = pyotp.parse_uri(uri)
    assert isinstance(parsed, pyotp.TOTP)
    return parsed


async def password_step(web: Web, name: str, password: str = PASSWORD) -> str:
    """The sign-in's first step for a user with TOTP: the code form's pending token."""
    web.client.session.cookie_jar.clear()
    token = csrf_of(await (await web.client.get("/signin")).text())
    answer = await web.client.post(
        "/signin", data={"csrf_token": token, "username": name, "password": password},
        allow_redirects=False,
    )  # fmt: skip
    html = await answer.text()
    assert answer.status == 200, html
    assert '<label for="code">Authentication code</label>' in html
    found = re.search(r'name="pending" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


async def code_step(web: Web, pending: str, code: str) -> int:
    token = csrf_of(await (await web.client.get("/signin")).text())
    answer = await web.client.post(
        "/signin", data={"csrf_token": token, "pending": pending, "code": code},
        allow_redirects=False,
    )  # fmt: skip
    return answer.status


async def test_a_user_with_totp_signs_in_with_a_code_that_works_once(web: Web) -> None:
    add_user(web.db, "admin", "acme")
    totp = enrol(web.db, "admin")
    pending = await password_step(web, "admin")
    assert await web.status("/imports") == 303  # a right password alone opens nothing
    assert await code_step(web, pending, totp.at(web.clock.now)) == 303
    assert await web.status("/imports") == 200
    # The same code again (a second sign-in within its 30 s): refused, it was spent.
    pending = await password_step(web, "admin")
    assert await code_step(web, pending, totp.at(web.clock.now)) == 401
    web.clock.advance(timedelta(seconds=30))
    assert await code_step(web, pending, totp.at(web.clock.now)) == 303


async def test_a_code_is_taken_one_step_either_side_of_now(web: Web) -> None:
    add_user(web.db, "admin", "acme")
    totp = enrol(web.db, "admin")
    step = timedelta(seconds=30 * (accounts.TOTP_VALID_STEPS + 1))
    near = timedelta(seconds=30 * accounts.TOTP_VALID_STEPS)
    pending = await password_step(web, "admin")
    assert await code_step(web, pending, totp.at(web.clock.now - step)) == 401
    assert await code_step(web, pending, totp.at(web.clock.now + step)) == 401
    assert await code_step(web, pending, totp.at(web.clock.now - near)) == 303
    pending = await password_step(web, "admin")
    assert await code_step(web, pending, totp.at(web.clock.now + near)) == 303
    code = totp.at(web.clock.now)
    pending = await password_step(web, "admin")
    assert await code_step(web, pending, code) == 401  # older than the step last taken


async def test_wrong_codes_count_in_the_sign_in_throttle(web: Web) -> None:
    add_user(web.db, "admin", "acme")
    totp = enrol(web.db, "admin")
    limit = web.ctx.settings.signin_max_failures
    pending = await password_step(web, "admin")
    for _ in range(limit):
        assert await code_step(web, pending, "000000") == 401
    assert await code_step(web, pending, totp.at(web.clock.now)) == 429  # locked, right or not
    assert await web.sign_in("admin") == 429  # the username is locked for the password too


async def test_the_code_form_lasts_its_bound(web: Web) -> None:
    add_user(web.db, "admin", "acme")
    totp = enrol(web.db, "admin")
    pending = await password_step(web, "admin")
    web.clock.advance(timedelta(seconds=TOTP_PENDING_SECONDS))
    assert await code_step(web, pending, totp.at(web.clock.now)) == 303  # at the edge: still
    pending = await password_step(web, "admin")
    web.clock.advance(timedelta(seconds=TOTP_PENDING_SECONDS + 1))
    assert await code_step(web, pending, totp.at(web.clock.now)) == 401  # the password again


async def test_operators_without_totp_are_refused_when_it_is_required(
    settings: Settings, db: Database
) -> None:
    async with web_for(settings, db, require_totp_for_operators=True) as web:
        add_user(db, "ops", None)
        add_user(db, "admin", "acme")
        assert await web.sign_in("ops") == 403
        assert await web.status("/imports") == 303
        assert await web.sign_in("admin") == 303  # a district administrator is not asked
        totp = enrol(db, "ops")
        pending = await password_step(web, "ops")
        assert await code_step(web, pending, totp.at(web.clock.now)) == 303


def sent_links(db: Database) -> list[tuple[str, str]]:
    """(recipient, token) of every password link in the outbox, oldest first."""
    found = []
    with db.read() as conn:
        for row in conn.execute(sa.select(outbox).order_by(outbox.c.id)).mappings():
            message = email.message_from_bytes(row["message"], policy=policy.default)
            body = message.get_body(("plain",))  # type: ignore[attr-defined]
            link = re.search(rf"{PUBLIC_URL}/password/([A-Za-z0-9_-]+)", body.get_content())
            assert link is not None, body.get_content()
            found.append((row["recipients"][0], link.group(1)))
    return found


async def forgot(web: Web, who: str) -> str:
    web.client.session.cookie_jar.clear()
    token = csrf_of(await (await web.client.get("/forgot")).text())
    answer = await web.client.post("/forgot", data={"csrf_token": token, "who": who})
    assert answer.status == 200
    return await answer.text()


async def set_by_link(web: Web, link: str, password: str = NEW_PASSWORD) -> int:
    web.client.session.cookie_jar.clear()
    page = await web.client.get(f"/password/{link}")
    if page.status != 200:
        return page.status
    answer = await web.client.post(
        f"/password/{link}",
        data={"csrf_token": csrf_of(await page.text()), "password": password, "repeat": password},
        allow_redirects=False,
    )
    return answer.status


async def test_forgot_password_answers_the_same_and_sends_only_to_real_accounts(web: Web) -> None:
    add_user(web.db, "admin", "acme")
    set_email(web.db, "admin", "admin@acme.example.org")
    known = await forgot(web, "admin")
    unknown = await forgot(web, "nobody")
    by_address = await forgot(web, "Admin@Acme.example.org")
    stranger = await forgot(web, "nobody@acme.example.org")
    answer = "If the account exists, an email is on its way to its address."
    for page in (known, unknown, by_address, stranger):
        assert answer in page
    links = sent_links(web.db)
    assert [to for to, _ in links] == ["admin@acme.example.org"] * 2
    # Only the newest link works: each one made kills the ones before.
    assert await set_by_link(web, links[0][1]) == 404
    assert await set_by_link(web, links[1][1]) == 303
    assert await web.sign_in("admin") == 401
    assert await web.sign_in("admin", NEW_PASSWORD) == 303
    with web.db.read() as conn:
        actions = [r.action for r in conn.execute(sa.select(audit_log.c.action))]
    assert actions == ["password_link_sent", "password_link_sent", "password_set_by_link"]


async def test_an_address_shared_by_accounts_sends_each_a_link_up_to_the_bound(web: Web) -> None:
    for number in range(FORGOT_MAX_USERS + 1):
        add_user(web.db, f"user{number}", "acme")
        set_email(web.db, f"user{number}", "office@acme.example.org")
    await forgot(web, "office@acme.example.org")
    links = sent_links(web.db)
    assert len(links) == FORGOT_MAX_USERS
    assert len({token for _, token in links}) == FORGOT_MAX_USERS  # each its own


async def test_forgot_password_sends_at_most_its_bound_per_window(web: Web) -> None:
    add_user(web.db, "admin", "acme")
    set_email(web.db, "admin", "admin@acme.example.org")
    for _ in range(RESET_MAX_REQUESTS + 1):
        assert "an email is on its way" in await forgot(web, "admin")
    assert len(sent_links(web.db)) == RESET_MAX_REQUESTS  # the last one: same answer, no email
    web.clock.advance(timedelta(seconds=RESET_WINDOW_SECONDS))
    await forgot(web, "admin")
    assert len(sent_links(web.db)) == RESET_MAX_REQUESTS + 1


async def test_a_link_works_once_until_it_expires_and_ends_the_sessions(web: Web) -> None:
    add_user(web.db, "admin", "acme")
    set_email(web.db, "admin", "admin@acme.example.org")
    life = timedelta(hours=web.ctx.settings.password_link_hours)
    assert await web.sign_in("admin") == 303
    signed_in = web.client.session.cookie_jar.filter_cookies(web.client.make_url("/"))
    await forgot(web, "admin")
    web.clock.advance(life - timedelta(seconds=1))
    link = sent_links(web.db)[-1][1]
    assert await set_by_link(web, link, "too-short") == 400
    assert await set_by_link(web, link) == 303  # one second before it expires
    assert await set_by_link(web, link, "yet-another-password") == 404  # once
    web.client.session.cookie_jar.update_cookies(signed_in)
    assert await web.status("/imports") == 303  # the old session ended with the new password

    await forgot(web, "admin")
    web.clock.advance(life)
    assert await set_by_link(web, sent_links(web.db)[-1][1]) == 404  # expired
    await forgot(web, "admin")
    with web.db.write() as conn:
        users.set_disabled(conn, "admin", True)
        users.set_disabled(conn, "admin", False)
    assert await set_by_link(web, sent_links(web.db)[-1][1]) == 404  # disabling killed it


async def test_a_bearer_token_reads_the_api_until_revoked_expired_or_disabled(web: Web) -> None:
    add_user(web.db, "admin", "acme")
    with web.db.write() as conn:
        user = users.get(conn, "admin")
        token_id, token, expires_at = accounts.new_api_token(
            conn, user, "ci", web=web.ctx.settings, now=web.clock.now
        )
    assert expires_at == START + timedelta(days=web.ctx.settings.api_token_days)
    bearer = {"Authorization": f"Bearer {token}"}
    web.client.session.cookie_jar.clear()
    listed = await web.client.get("/api/v1/imports", headers=bearer)
    assert listed.status == 200
    assert (await listed.json())["imports"] == []
    # No CSRF token with a Bearer token: a missing import is a 404, not a 403.
    assert (await web.client.post("/api/v1/imports/999/approve", headers=bearer)).status == 404
    assert (await web.client.get("/api/v1/imports")).status == 401  # neither token nor cookie
    wrong = await web.client.get("/api/v1/imports", headers={"Authorization": "Bearer rd_x"})
    assert (wrong.status, (await wrong.json())["error"]) == (401, REFUSED)

    with web.db.write() as conn:
        users.set_disabled(conn, "admin", True)
    assert (await web.client.get("/api/v1/imports", headers=bearer)).status == 401
    with web.db.write() as conn:
        users.set_disabled(conn, "admin", False)
    web.clock.advance(expires_at - web.clock.now - timedelta(seconds=1))
    assert (await web.client.get("/api/v1/imports", headers=bearer)).status == 200
    web.clock.advance(timedelta(seconds=1))
    assert (await web.client.get("/api/v1/imports", headers=bearer)).status == 401  # expired
    with web.db.write() as conn:
        other_id, other, _ = accounts.new_api_token(
            conn, user, "", web=web.ctx.settings, now=web.clock.now
        )
    other_bearer = {"Authorization": f"Bearer {other}"}
    assert (await web.client.get("/api/v1/imports", headers=other_bearer)).status == 200
    with web.db.write() as conn:
        credentials.revoke_token(conn, user.id, other_id, web.clock.now)
        with pytest.raises(NotFound):  # another user's token, or none, is not found
            credentials.revoke_token(conn, user.id, token_id + 100, web.clock.now)
    assert (await web.client.get("/api/v1/imports", headers=other_bearer)).status == 401


async def test_a_forgot_password_reset_revokes_the_tokens_an_invitation_keeps_them(
    web: Web, settings: Settings
) -> None:
    add_user(web.db, "admin", "acme")
    set_email(web.db, "admin", "admin@acme.example.org")
    with web.db.write() as conn:
        user = users.get(conn, "admin")
        _, token, _ = accounts.new_api_token(conn, user, "ci", web=web.ctx.settings, now=START)
        accounts.send_password_link(
            conn, user, credentials.LinkPurpose.INVITATION, web=web.ctx.settings,
            smtp=settings.smtp, now=START,
        )  # fmt: skip
    bearer = {"Authorization": f"Bearer {token}"}
    assert await set_by_link(web, sent_links(web.db)[-1][1]) == 303
    assert (await web.client.get("/api/v1/imports", headers=bearer)).status == 200
    await forgot(web, "admin")  # a reset: whoever knew the old password may hold a token
    assert await set_by_link(web, sent_links(web.db)[-1][1], "yet-another-password") == 303
    assert (await web.client.get("/api/v1/imports", headers=bearer)).status == 401
    with web.db.read() as conn:
        (listed,) = credentials.tokens_of(conn, user.id)
    assert listed.state(web.clock.now) == "revoked"


async def test_a_cookie_still_needs_its_csrf_token_on_the_api(web: Web) -> None:
    add_user(web.db, "admin", "acme")
    assert await web.sign_in("admin") == 303
    assert (await web.client.post("/api/v1/imports/999/approve")).status == 403


async def test_the_signed_out_forms_refuse_a_post_without_their_token(web: Web) -> None:
    add_user(web.db, "admin", "acme")
    set_email(web.db, "admin", "admin@acme.example.org")
    web.client.session.cookie_jar.clear()
    forged = await web.client.post("/forgot", data={"who": "admin"})
    assert forged.status == 403
    assert sent_links(web.db) == []
    await forgot(web, "admin")
    link = sent_links(web.db)[0][1]
    web.client.session.cookie_jar.clear()
    forged = await web.client.post(
        f"/password/{link}", data={"password": NEW_PASSWORD, "repeat": NEW_PASSWORD}
    )
    assert forged.status == 403
    assert await set_by_link(web, link) == 303  # the forgery spent nothing
