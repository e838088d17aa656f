"""The operator's pages and the rest of Setup in a real browser (chromium through Playwright)
against the real `rosterdrop serve`, whose emails go to a real SMTP relay (aiosmtpd): an
operator adds a tenant and sees its password once, disables it and its SFTP login is refused;
a district adds an SSH key and logs in with it over SFTP (paramiko), removes it and is
refused; edits its grade rules; the audit log shows all of it; a failed email retried from the
Outbox reaches the relay; a district administrator finds none of the operator's pages.

Set ROSTERDROP_WEB_SCREENSHOTS=docs to refresh the README's screenshots of these pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paramiko
import pytest

from daemon.passwords import PASSWORD_LENGTH, hash_password
from daemon.store import outbox, tenants, users
from tests.acceptance.test_web_browser import (
    SCREENSHOTS,
    WEB_PASSWORD,
    Manager,
    page,  # noqa: F401 - a browser page on the manager's daemon
    screenshot,
    sftp_logs_in,
    sign_in,
)
from tests.support import clever
from tests.support.browser import browser  # noqa: F401 - the module's chromium
from tests.support.process import Relay
from tests.support.site import Site

pytestmark = [pytest.mark.browser, pytest.mark.slow]

OPERATOR = "ops"
OPERATOR_PAGES = ("/operator", "/operator/tenants", "/operator/users", "/operator/outbox",
                  "/operator/audit")  # fmt: skip


@pytest.fixture(scope="module")
def relay() -> Iterator[Relay]:
    server = Relay().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def manager(
    tmp_path_factory: pytest.TempPathFactory, host_keys: Path, relay: Relay
) -> Iterator[Manager]:
    root = tmp_path_factory.mktemp("web-operator")
    smtp = {
        "ROSTERDROP_SMTP_HOST": "127.0.0.1",
        "ROSTERDROP_SMTP_PORT": str(relay.port),
        "ROSTERDROP_SMTP_TLS": "none",
    }
    site = Site.create(root, host_keys, smtp)
    with site.db() as db, db.write() as conn:
        users.add(
            conn, OPERATOR, tenant_id=None, email=None,
            password_hash=hash_password(WEB_PASSWORD), now=datetime.now(UTC),
        )  # fmt: skip
    with site.daemon() as daemon:
        daemon.ready()
        port = daemon.find("rosterdrop is ready")[0]["web_port"]
        yield Manager(site, daemon, f"http://127.0.0.1:{port}", root)
        assert daemon.stop() == 0
    site.close()


def as_operator(tab: Any) -> None:
    tab.goto("/signin")
    sign_in(tab, OPERATOR)
    tab.wait_for_url(re.compile(r"/imports$"))
    tab.get_by_role("navigation", name="Main").get_by_role("link", name="Operator").click()
    tab.wait_for_url(re.compile(r"/operator$"))


def key_login(manager: Manager, tenant: str, key: paramiko.PKey) -> bool:
    try:
        with paramiko.SSHClient() as ssh:
            ssh.set_missing_host_key_policy(paramiko.AutoAddPolicy())
            ssh.connect(
                "127.0.0.1", manager.daemon.sftp_port, tenant, pkey=key, timeout=20,
                allow_agent=False, look_for_keys=False,
            )  # fmt: skip
            with ssh.open_sftp() as sftp:
                return sorted(sftp.listdir("/")) == ["check", "upload"]
    except paramiko.AuthenticationException:
        return False


def test_an_operator_adds_a_tenant_sees_its_password_once_and_disables_it(
    page: Any,  # noqa: F811 - the fixture
    manager: Manager,
) -> None:
    as_operator(page)
    page.get_by_role("link", name="Tenants").click()
    page.get_by_label("Tenant name").fill("riverside")
    page.get_by_label("Notification addresses (one per line)").fill("it@riverside.example.org")
    page.get_by_role("button", name="Add tenant").click()
    assert page.get_by_role("status").inner_text() == "Tenant riverside was added."
    password = page.locator("#password-value").inner_text()
    assert len(password) == PASSWORD_LENGTH
    assert sftp_logs_in(manager, "riverside", password)  # the running daemon, at once
    page.goto("/operator/tenants")  # shown once: not on the page again
    assert password not in page.locator("main").inner_text()
    row = page.get_by_role("row").filter(has_text="riverside")
    assert "enabled" in row.inner_text()
    assert "none yet" in row.inner_text()

    page.get_by_role("button", name="Disable riverside").click()
    assert "riverside is disabled" in page.get_by_role("status").inner_text()
    assert not sftp_logs_in(manager, "riverside", password)
    screenshot(page, "operator-tenants", full_page=True)
    page.get_by_role("button", name="Enable riverside").click()
    assert sftp_logs_in(manager, "riverside", password)

    page.get_by_label("Tenant name").fill("Bad Name")
    page.get_by_role("button", name="Add tenant").click()
    assert page.get_by_role("alert").inner_text().startswith("The tenant was not added:")
    assert "Tenant name: tenant name 'Bad Name' must be" in page.get_by_role("alert").inner_text()
    assert page.get_by_label("Tenant name").get_attribute("aria-invalid") == "true"

    page.get_by_role("link", name="Operator").first.click()
    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("Tenant").fill("riverside")
    page.get_by_role("button", name="Filter").click()
    entries = page.locator("table").inner_text()
    for action in ("tenant_added", "tenant_disabled", "tenant_enabled"):
        assert action in entries
    screenshot(page, "operator-audit")


def test_a_district_adds_an_ssh_key_logs_in_with_it_and_removes_it(
    page: Any,  # noqa: F811 - the fixture
    manager: Manager,
) -> None:
    tenant, admin = manager.district()
    key = paramiko.RSAKey.generate(2048)
    line = f"{key.get_name()} {key.get_base64()} sis-export@{tenant}"
    assert not key_login(manager, tenant, key)
    page.goto("/signin")
    sign_in(page, admin)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Setup").click()
    assert (
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Operator").count()
        == 0
    )

    page.get_by_label("Public key (one line of a .pub file)").fill("ssh-rsa not-a-key")
    page.get_by_role("button", name="Add key").click()
    assert (
        page.get_by_role("alert").inner_text().startswith("Public key: not an OpenSSH public key")
    )
    page.get_by_label("Public key (one line of a .pub file)").fill(line)
    page.get_by_role("button", name="Add key").click()
    assert "The key was added" in page.get_by_role("status").inner_text()
    keys = page.locator("#keys ~ table").inner_text()
    assert "ssh-rsa" in keys
    assert f"sis-export@{tenant}" in keys
    assert key_login(manager, tenant, key)  # the running daemon, at the next login
    if SCREENSHOTS:  # the keys' section alone: the page above it is web-setup.png
        section = page.locator("section[aria-labelledby=keys]")
        section.screenshot(path=str(Path(SCREENSHOTS) / "web-setup-keys.png"))

    page.get_by_role("button", name=re.compile(r"^Remove the key SHA256:")).click()
    assert page.get_by_role("heading", level=1).inner_text() == (
        f"Remove this public key of {tenant}?"
    )
    page.get_by_role("button", name="Confirm").click()
    assert "The key was removed" in page.get_by_role("status").inner_text()
    assert not key_login(manager, tenant, key)

    rules = page.get_by_label("Grade replace rules (one FROM=TO per line)")
    rules.fill("K5=KG\nFirst")
    page.get_by_role("button", name="Save grade rules").click()
    alert = page.get_by_role("alert").inner_text()
    assert alert == "Grade replace rules: line 2: grade-rule wants FROM=TO, not 'First'"
    assert rules.get_attribute("aria-invalid") == "true"
    rules.fill("K5=KG\nFirst=01")
    page.get_by_label("Also apply the common rules").uncheck()
    page.get_by_role("button", name="Save grade rules").click()
    assert page.get_by_role("status").inner_text() == "The grade rules were saved."
    shown = manager.site.cli("tenant", "show", tenant, "--json")
    assert '"K5": "KG"' in shown.stdout
    assert '"common_grade_rules": false' in shown.stdout

    audit = page.locator("#audit ~ .scroll table").inner_text()
    for action in ("public_key_added", "public_key_removed", "grade_rules"):
        assert action in audit
    assert admin in audit
    assert audit.index("grade_rules") < audit.index("public_key_added")  # newest first


def test_a_failed_email_is_retried_from_the_outbox_and_reaches_the_relay(
    page: Any,  # noqa: F811 - the fixture
    manager: Manager,
    relay: Relay,
) -> None:
    tenant = manager.site.add_tenant("quietvale")  # no address yet: its email has nobody
    import_id = manager.run_import(tenant, clever.minimal_files())
    with manager.site.db() as db, db.read() as conn:
        (subject,) = [m.subject for m in outbox.list_messages(conn) if m.import_id == import_id]
    as_operator(page)
    page.goto(f"/tenants/{tenant}/setup")
    page.get_by_label("Notification addresses (one per line)").fill(
        "registrar@quietvale.example.org"
    )
    page.get_by_role("button", name="Save addresses").click()
    page.goto("/operator/outbox?state=failed")
    row = page.get_by_role("row").filter(has_text=subject)
    assert "no recipients" in row.inner_text()
    screenshot(page, "operator-outbox", full_page=True)
    row.get_by_role("button", name=re.compile(r"^Retry email #")).click()
    status = page.get_by_role("status").inner_text()
    assert status.endswith("will be sent now to registrar@quietvale.example.org.")
    delivered = relay.wait_for(subject)
    assert delivered["To"] == "registrar@quietvale.example.org"
    page.goto("/operator/outbox")
    assert subject not in page.locator("main").inner_text()  # sent: no longer waiting
    page.goto("/operator/audit?action=email_retry")
    assert "registrar@quietvale.example.org" in page.locator("table").inner_text()


def test_a_district_administrator_finds_no_operator_page(
    page: Any,  # noqa: F811 - the fixture
    manager: Manager,
) -> None:
    tenant, admin = manager.district()
    page.goto("/signin")
    sign_in(page, admin)
    page.wait_for_url(re.compile(r"/imports$"))
    for path in OPERATOR_PAGES:
        assert page.request.get(path).status == 404, path
    page.goto("/operator/tenants")
    assert page.get_by_role("heading", level=1).inner_text() == "Error 404"
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    for path in (f"/operator/tenants/{tenant}/disable", f"/operator/users/{OPERATOR}/disable"):
        assert page.request.post(path, form={"csrf_token": token}).status == 404, path
    refused = page.request.post("/operator/tenants", form={"csrf_token": token, "name": "mine"})
    assert refused.status == 404
    with manager.site.db() as db, db.read() as conn:
        assert tenants.find(conn, "mine") is None
        assert not tenants.get(conn, tenant).disabled
        assert not users.get(conn, OPERATOR).disabled
