"""Who signs in, in a real browser (chromium through Playwright) against the real `rosterdrop
serve`, its emails caught by a real SMTP server (aiosmtpd): an invitation's link sets the
password, works once and not after it expires; "forgot password" end to end; a sign-in with a
TOTP code from pyotp; a removed user's session ends; a Bearer token read with curl, refused
once revoked.

Set ROSTERDROP_WEB_SCREENSHOTS=docs to refresh the README's screenshots of these pages."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa

from daemon.store.tables import password_links, users
from tests.acceptance.test_web_browser import WEB_PASSWORD, Manager, screenshot, sign_in
from tests.support import clever
from tests.support.browser import browser  # noqa: F401 - the module's chromium
from tests.support.process import Relay, free_port, wait_until
from tests.support.site import Site

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHOSEN = "a-password-i-chose"
INVITED = "You are invited to the rosterdrop Import Manager"
RESET = "Set a new password for the rosterdrop Import Manager"


@pytest.fixture(scope="module")
def relay() -> Iterator[Relay]:
    server = Relay().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def manager(
    tmp_path_factory: pytest.TempPathFactory, host_keys: Path, relay: Relay
) -> Iterator[Manager]:
    root = tmp_path_factory.mktemp("accounts")
    port = free_port()  # chosen first: the links in the emails must name it
    url = f"http://127.0.0.1:{port}"
    site = Site.create(
        root, host_keys, ROSTERDROP_WEB_PORT=str(port), ROSTERDROP_WEB_PUBLIC_URL=url,
        ROSTERDROP_SMTP_HOST="127.0.0.1", ROSTERDROP_SMTP_PORT=str(relay.port),
        ROSTERDROP_SMTP_TLS="none", ROSTERDROP_SMTP_COPY_TO="ops@example.org",
    )  # fmt: skip
    with site.daemon() as daemon:
        daemon.ready()
        yield Manager(site, daemon, url, root)
        assert daemon.stop() == 0
    site.close()


@pytest.fixture
def page(browser: Any, manager: Manager) -> Iterator[Any]:  # noqa: F811
    context = browser.new_context(base_url=manager.url, viewport={"width": 1100, "height": 820})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def link_in(message: EmailMessage, manager: Manager) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    found = re.search(rf"{re.escape(manager.url)}/password/[A-Za-z0-9_-]+", body.get_content())
    assert found is not None, body.get_content()
    return found.group(0)


def latest(relay: Relay, subject: str, to: str) -> EmailMessage:
    def mine() -> list[EmailMessage]:
        return [m for r, m in relay.messages() if to in r and str(m["Subject"]) == subject]

    found: list[EmailMessage] = wait_until(mine, 20.0, f"an email to {to}")
    return found[-1]


def choose_password(page: Any, password: str = CHOSEN) -> None:
    page.get_by_label("New password", exact=True).fill(password)
    page.get_by_label("Repeat the new password").fill(password)
    page.get_by_role("button", name="Set the password").click()


def cli_ok(site: Site, *args: str) -> str:
    done = site.cli(*args)
    assert done.returncode == 0, done.stderr
    return str(done.stdout)


def test_an_invitation_sets_the_password_once_and_the_user_signs_in(
    page: Any, manager: Manager, relay: Relay
) -> None:
    tenant, _ = manager.district()
    address = f"registrar@{tenant}.example.org"
    said = cli_ok(manager.site, "user", "add", "registrar-" + tenant, "--tenant", tenant,
                  "--email", address)  # fmt: skip
    assert f"invitation queued for {address}" in said
    invitation = latest(relay, INVITED, address)
    recipients = next(r for r, m in relay.messages() if m["Message-ID"] == invitation["Message-ID"])
    assert recipients == [address]  # never the operator's copy: the link is a password
    link = link_in(invitation, manager)

    page.goto(link)
    assert page.get_by_role("heading", level=1).inner_text() == "Choose your password"
    choose_password(page, "short")  # the browser's own check stops it: minlength
    assert "/password/" in page.url
    page.get_by_label("New password", exact=True).fill(CHOSEN)
    page.get_by_label("Repeat the new password").fill(CHOSEN + "x")
    screenshot(page, "password")
    page.get_by_role("button", name="Set the password").click()
    assert "it differs" in page.get_by_role("alert").inner_text()
    choose_password(page)
    page.wait_for_url(re.compile(r"/signin\?done=password$"))
    assert page.get_by_role("status").inner_text() == "Your password is set: sign in with it."
    sign_in(page, "registrar-" + tenant, CHOSEN)
    page.wait_for_url(re.compile(r"/imports$"))
    assert page.get_by_role("heading", level=1).inner_text() == f"Imports of {tenant}"

    page.goto(link)  # a second time: spent
    assert "This link no longer works" in page.get_by_role("alert").inner_text()


def test_an_expired_invitation_no_longer_works(page: Any, manager: Manager, relay: Relay) -> None:
    tenant, _ = manager.district()
    address = f"late@{tenant}.example.org"
    cli_ok(manager.site, "user", "add", "late-" + tenant, "--tenant", tenant, "--email", address)
    link = link_in(latest(relay, INVITED, address), manager)
    with manager.site.db() as db, db.write() as conn:  # the days pass
        conn.execute(sa.update(password_links).values(expires_at=datetime.now(UTC) - timedelta(1)))
    response = page.goto(link)
    assert response.status == 404
    assert "This link no longer works" in page.get_by_role("alert").inner_text()
    assert page.get_by_label("New password", exact=True).count() == 0


def test_forgot_password_from_the_sign_in_page(page: Any, manager: Manager, relay: Relay) -> None:
    tenant, admin = manager.district()
    address = f"forgetful@{tenant}.example.org"
    with manager.site.db() as db, db.write() as conn:
        conn.execute(sa.update(users).where(users.c.name == admin).values(email=address))
    page.goto("/signin")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Username or email").fill(address.upper())
    screenshot(page, "forgot")
    page.get_by_role("button", name="Send the link").click()
    said = page.get_by_role("status").inner_text()
    assert said.startswith("If the account exists, an email is on its way to its address.")
    page.goto("/forgot")  # an unknown account gets exactly the same answer
    page.get_by_label("Username or email").fill("nobody-at-all")
    page.get_by_role("button", name="Send the link").click()
    assert page.get_by_role("status").inner_text() == said

    page.goto(link_in(latest(relay, RESET, address), manager))
    choose_password(page)
    page.wait_for_url(re.compile(r"/signin\?done=password$"))
    sign_in(page, admin, WEB_PASSWORD)  # the old password stopped working
    assert page.get_by_role("alert").inner_text() == "Wrong username or password."
    sign_in(page, admin, CHOSEN)
    page.wait_for_url(re.compile(r"/imports$"))


def test_a_sign_in_with_an_authentication_code(page: Any, manager: Manager) -> None:
    tenant, admin = manager.district()
    enrolled = cli_ok(manager.site, "user", "totp", admin)
    uri = re.search(r"otpauth URI: (\S+)", enrolled)
    assert uri is not None
    totp = pyotp.parse_uri(uri.group(1))
    page.goto("/signin")
    sign_in(page, admin)
    assert page.get_by_role("heading", level=1).inner_text() == "Authentication code"
    page.get_by_label("Authentication code").fill("000000")
    page.get_by_role("button", name="Sign in").click()
    assert "Wrong authentication code" in page.get_by_role("alert").inner_text()
    screenshot(page, "signin-code")
    page.get_by_label("Authentication code").fill(totp.now())
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/imports$"))
    assert page.get_by_role("heading", level=1).inner_text() == f"Imports of {tenant}"


def test_a_removed_user_is_signed_out(page: Any, manager: Manager) -> None:
    _, admin = manager.district()
    page.goto("/signin")
    sign_in(page, admin)
    page.wait_for_url(re.compile(r"/imports$"))
    cli_ok(manager.site, "user", "remove", admin)
    page.goto("/imports")
    assert "/signin" in page.url
    sign_in(page, admin)
    assert page.get_by_role("alert").inner_text() == "Wrong username or password."


def curl(manager: Manager, token: str, path: str) -> tuple[int, str]:
    done = subprocess.run(
        ["curl", "--silent", "--show-error", "--write-out", "\n%{http_code}",
         "--header", f"Authorization: Bearer {token}", manager.url + path],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


def test_a_bearer_token_reads_the_imports_with_curl_until_revoked(manager: Manager) -> None:
    tenant, admin = manager.district()
    other, _ = manager.district()
    mine = manager.run_import(tenant, clever.minimal_files())
    theirs = manager.run_import(other, clever.minimal_files())
    made = cli_ok(manager.site, "user", "token", admin, "--label", "nightly report")
    token = re.search(r"^  (rd_\S+)$", made, re.MULTILINE)
    assert token is not None
    status, body = curl(manager, token.group(1), "/api/v1/imports")
    assert status == 200, body
    assert [i["id"] for i in json.loads(body)["imports"]] == [mine]  # its own tenant only
    assert curl(manager, token.group(1), f"/api/v1/imports/{theirs}")[0] == 404
    listed = json.loads(cli_ok(manager.site, "user", "token", admin, "--list", "--json"))
    cli_ok(manager.site, "user", "token", admin, "--revoke", str(listed[0]["id"]))
    status, body = curl(manager, token.group(1), "/api/v1/imports")
    assert status == 401
    assert "revoked" in json.loads(body)["error"]
