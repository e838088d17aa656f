"""The web Import Manager in a real browser (chromium through Playwright) against the real
`rosterdrop serve`: sign-in, a district's review, approval and rejection, isolation between
tenants, CSRF refusal, hostile CSV values shown as text, the Setup page (a rotated password
that the SFTP server takes at the next login).

Set ROSTERDROP_WEB_SCREENSHOTS=docs to refresh the README's screenshots from these pages."""

from __future__ import annotations

import itertools
import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paramiko
import pytest

from daemon.clever.files import find_files
from daemon.hostkeyfiles import host_key_fingerprints
from daemon.passwords import PASSWORD_LENGTH, hash_password
from daemon.pipeline import Pipeline
from daemon.store import tenants, users
from tests.support import clever, drop
from tests.support.browser import browser  # noqa: F401 - the session's chromium
from tests.support.process import Daemon
from tests.support.site import PASSWORD as SFTP_PASSWORD
from tests.support.site import Site

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WEB_PASSWORD = "a-district-password"
HOSTILE = "<script>alert('x')</script>"
SCREENSHOTS = os.environ.get("ROSTERDROP_WEB_SCREENSHOTS")
_names = itertools.count(1)


@dataclass
class Manager:
    """A running daemon with its Import Manager, and ways to give it districts and imports."""

    site: Site
    daemon: Daemon
    url: str
    root: Path

    def district(self) -> tuple[str, str]:
        """A new tenant and its administrator: (tenant, username)."""
        tenant = f"district{next(_names)}"
        self.site.add_tenant(tenant, f"admin@{tenant}.example.org")
        with self.site.db() as db, db.write() as conn:
            users.add(
                conn, f"{tenant}-admin", tenant_id=tenants.get(conn, tenant).id, email=None,
                password_hash=hash_password(WEB_PASSWORD), now=datetime.now(UTC),
            )  # fmt: skip
        return tenant, f"{tenant}-admin"

    def run_import(self, tenant: str, files: dict[str, list[list[str]]]) -> int:
        """An upload imported as `rosterdrop import` does it (in this process)."""
        folder = clever.write_upload(self.root / f"{tenant}-{next(_names)}", files)
        settings = self.site.settings
        with self.site.db() as db:
            pipeline = Pipeline(db, settings.paths, settings.smtp)
            with db.read() as conn:
                owner = tenants.get(conn, tenant)
            import_id = pipeline.receive(owner, find_files(folder), source="cli", move=False)
            pipeline.run(import_id)
        return import_id

    def paused_import(self, tenant: str) -> int:
        """After a first import: one that drops S2 (and its enrollment), adds S3, and has a
        student whose school is a hostile value (a row error, so it pauses)."""
        files = clever.minimal_files()
        self.run_import(tenant, files)
        files["students.csv"] = [
            ["SCH1", "S1", "Ann", "Lee", "ann@students.org", "ann", "03"],
            ["SCH1", "S3", "Cy", "Ng", "", "cy", "05"],
            [HOSTILE, "S4", "Eve", "Evil", "", "eve", "05"],
        ]
        files["enrollments.csv"] = [["SCH1", "SEC1", "S1"]]
        import_id = self.run_import(tenant, files)
        assert self.state(import_id) == "paused"
        return import_id

    def state(self, import_id: int) -> str:
        return next(r["state"] for r in self.site.imports() if r["id"] == import_id)

    def students(self, tenant: str) -> set[str]:
        return {s["student_id"] for s in self.site.roster(tenant)["students"]}


@pytest.fixture(scope="module")
def manager(tmp_path_factory: pytest.TempPathFactory, host_keys: Path) -> Iterator[Manager]:
    root = tmp_path_factory.mktemp("web")
    site = Site.create(root, host_keys)
    with site.daemon() as daemon:
        daemon.ready()
        port = daemon.find("rosterdrop is ready")[0]["web_port"]
        yield Manager(site, daemon, f"http://127.0.0.1:{port}", root)
        assert daemon.stop() == 0
    site.close()


@pytest.fixture
def page(browser: Any, manager: Manager) -> Iterator[Any]:  # noqa: F811
    context = browser.new_context(base_url=manager.url, viewport={"width": 1100, "height": 820})
    page = context.new_page()
    page.set_default_timeout(10_000)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    yield page
    context.close()
    assert dialogs == [], "a script ran in the page"


def sign_in(page: Any, username: str, password: str = WEB_PASSWORD) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def screenshot(page: Any, name: str, *, full_page: bool = False) -> None:
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / f"web-{name}.png"), full_page=full_page)


def test_sign_in_refuses_a_wrong_password_then_signs_in_and_out(
    page: Any, manager: Manager
) -> None:
    tenant, admin = manager.district()
    page.goto("/imports")
    assert "/signin" in page.url  # not signed in: the form, which comes back here
    sign_in(page, admin, "not-the-password")
    assert page.get_by_role("alert").inner_text() == "Wrong username or password."
    sign_in(page, admin)
    page.wait_for_url(re.compile(r"/imports$"))
    assert page.get_by_role("heading", level=1).inner_text() == f"Imports of {tenant}"
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/signin$"))
    page.goto("/imports")  # the session is gone on the server, not only in the browser
    assert "/signin" in page.url


def test_a_district_reviews_and_approves_its_paused_import(page: Any, manager: Manager) -> None:
    tenant, admin = manager.district()
    import_id = manager.paused_import(tenant)
    page.goto("/imports")
    sign_in(page, admin)
    paused = page.get_by_role("table", name="Paused: waiting for your review")
    assert paused.get_by_role("link", name=f"#{import_id}").is_visible()
    screenshot(page, "imports")

    paused.get_by_role("link", name=f"#{import_id}").click()
    thresholds = page.locator("#thresholds + table")
    assert "not imported whole (rows with errors)" in thresholds.inner_text()
    assert "this district allows 0" in page.locator(".sentences").inner_text()
    problems = page.locator("table.problems")
    assert HOSTILE in problems.inner_text()  # the CSV's value, shown as text
    assert page.locator("script").count() == 0
    screenshot(page, "paused-import")

    page.get_by_role("button", name="Approve").click()
    changes = page.locator("ul.changes").inner_text()
    assert "deactivate 1 student, 1 enrollment" in changes
    assert "add 1 student" in changes
    page.get_by_label("Note (optional, kept in the audit log)").fill(f"checked {HOSTILE}")
    screenshot(page, "confirm")
    page.get_by_role("button", name="Confirm").click()

    assert "Approved: the import was applied" in page.get_by_role("status").inner_text()
    assert manager.state(import_id) == "imported_with_errors"
    assert manager.students(tenant) == {"S1", "S3"}  # S2 deactivated, S3 added, S4 skipped
    audit = page.locator("#audit + table").inner_text()
    assert admin in audit
    assert "approve" in audit
    assert f"note: checked {HOSTILE}" in audit
    assert "Approve" not in page.locator("main").get_by_role("button").all_inner_texts()


def test_a_district_rejects_its_paused_import(page: Any, manager: Manager) -> None:
    tenant, admin = manager.district()
    import_id = manager.paused_import(tenant)
    before = manager.students(tenant)
    page.goto(f"/imports/{import_id}")
    sign_in(page, admin)
    page.wait_for_url(re.compile(rf"/imports/{import_id}$"))  # back where it was going
    page.get_by_role("button", name="Reject").click()
    assert "nothing is applied" in page.locator("main").inner_text()
    page.get_by_role("button", name="Confirm").click()
    assert page.get_by_role("status").inner_text() == "Rejected: nothing was changed."
    assert manager.state(import_id) == "rejected"
    assert manager.students(tenant) == before
    assert "rejected" in page.locator(".timeline").inner_text()


def test_another_districts_import_is_not_found(page: Any, manager: Manager) -> None:
    north, _ = manager.district()
    _, south_admin = manager.district()
    theirs = manager.paused_import(north)
    page.goto("/signin")
    sign_in(page, south_admin)
    page.wait_for_url(re.compile(r"/imports$"))
    assert page.get_by_role("link", name=f"#{theirs}").count() == 0
    for path in (
        f"/imports/{theirs}",
        f"/imports/{theirs}/approve",
        f"/imports/{theirs}/problems.csv",
        f"/imports?tenant={north}",
        f"/api/v1/imports/{theirs}",
    ):
        assert page.request.get(path).status == 404, path
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    refused = page.request.post(
        f"/api/v1/imports/{theirs}/approve", headers={"X-CSRF-Token": token}
    )
    assert refused.status == 404
    assert manager.state(theirs) == "paused"


def test_a_post_without_the_csrf_token_is_refused(page: Any, manager: Manager) -> None:
    tenant, admin = manager.district()
    import_id = manager.paused_import(tenant)
    page.goto("/signin")
    sign_in(page, admin)
    page.wait_for_url(re.compile(r"/imports$"))
    for path in (f"/imports/{import_id}/approve", f"/api/v1/imports/{import_id}/approve"):
        refused = page.request.post(path, form={"note": "forged"})
        assert refused.status == 403, path
    assert manager.state(import_id) == "paused"
    # The same request with the session's token (the API's header) is the district's own.
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    shown = page.request.get(f"/api/v1/imports/{import_id}").json()
    done = page.request.post(f"/api/v1/imports/{import_id}/reject", headers={"X-CSRF-Token": token})
    assert done.status == 200
    assert set(done.json()) == set(shown)  # the shape of `imports show --json`
    assert done.json()["state"] == "rejected"
    assert done.json()["decided_by"] == admin


def test_the_web_listener_serves_no_ops_endpoints(manager: Manager) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(manager.url + path, timeout=10)  # noqa: S310 - our own
        refused.value.close()
        assert refused.value.code == 404, path
    status, body = manager.daemon.get("/healthz")
    assert (status, body) == (200, "ok\n")  # still on the ops listener
    assert json.loads(manager.daemon.get("/readyz")[1])["ready"] is True


def sftp_logs_in(manager: Manager, tenant: str, password: str) -> bool:
    try:
        with drop.sftp_session(manager.daemon.sftp_port, tenant, password) as sftp:
            return sorted(sftp.listdir("/")) == ["check", "upload"]
    except paramiko.AuthenticationException:
        return False


def test_a_district_sets_up_its_sftp_login_addresses_and_thresholds(
    page: Any, manager: Manager
) -> None:
    tenant, admin = manager.district()
    page.goto("/signin")
    sign_in(page, admin)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Setup").click()
    page.wait_for_url(re.compile(rf"/tenants/{tenant}/setup$"))
    assert page.locator("#sftp-username").inner_text() == tenant
    assert page.locator("#sftp-port").inner_text() == str(manager.daemon.sftp_port)
    assert page.locator("#sftp-directory").inner_text() == "/upload"
    fingerprints = page.locator(".fingerprints").inner_text()
    assert fingerprints == "\n".join(host_key_fingerprints(manager.site.settings.paths.host_keys))
    assert "ED25519 SHA256:" in fingerprints
    screenshot(page, "setup", full_page=True)

    page.get_by_role("button", name="Rotate the SFTP password").click()
    page.get_by_role("button", name="Confirm").click()
    assert "the old one no longer works" in page.get_by_role("status").inner_text()
    password = page.locator("#password-value").inner_text()
    assert len(password) == PASSWORD_LENGTH
    assert sftp_logs_in(manager, tenant, password)  # the running daemon, at the next login
    assert not sftp_logs_in(manager, tenant, SFTP_PASSWORD)
    page.goto(f"/tenants/{tenant}/setup")  # shown once: not on the page again
    assert password not in page.locator("main").inner_text()

    page.get_by_label("Notification addresses (one per line)").fill(f"it@{tenant}.example.org")
    page.get_by_role("button", name="Save addresses").click()
    assert page.get_by_role("status").inner_text() == "The notification addresses were saved."
    page.get_by_label("Max row errors").fill("3")
    page.get_by_role("button", name="Save thresholds").click()
    assert page.get_by_role("status").inner_text() == "The thresholds were saved."

    page.get_by_label("Max deactivate %").fill("150")
    page.get_by_role("button", name="Save thresholds").click()
    error = page.get_by_role("alert").inner_text()
    assert "Max deactivate %: max_deactivate_percent must be between 0 and 100" in error
    assert page.get_by_label("Max deactivate %").get_attribute("aria-invalid") == "true"
    shown = json.loads(manager.site.cli("tenant", "show", tenant, "--json").stdout)
    assert shown["emails"] == [f"it@{tenant}.example.org"]
    assert shown["settings"]["max_row_errors"] == 3
    assert shown["settings"]["max_deactivate_percent"] == 10.0  # the refused form changed nothing

    # A district whose SIS exports OneRoster says so (docs/oneroster.md).
    page.get_by_label("OneRoster 1.1 or 1.2 CSV (loose files or one .zip)").check()
    page.get_by_role("button", name="Save upload format").click()
    assert page.get_by_role("status").inner_text() == "The upload format was saved."
    shown = json.loads(manager.site.cli("tenant", "show", tenant, "--json").stdout)
    assert shown["settings"]["input_format"] == "oneroster"


def test_a_district_undoes_an_import_approved_by_mistake(page: Any, manager: Manager) -> None:
    """Issue 14: the Undo button, its confirmation (the plan, the change browser of what it
    reverses), CSRF, another tenant's 404, the audit log, and the roster back as it was."""
    tenant, admin = manager.district()
    files = clever.minimal_files()
    first = manager.run_import(tenant, files)
    before = manager.site.roster(tenant)
    files["students.csv"] = [
        ["SCH1", "S1", "Ann", "Leigh", "ann@students.org", "ann", "04"],
        ["SCH1", "S3", "Cy", "Ng", "", "cy", "05"],
    ]
    files["enrollments.csv"] = [["SCH1", "SEC1", "S1"]]
    bad = manager.run_import(tenant, files)
    assert manager.state(bad) == "imported"
    _, other_admin = manager.district()

    page.goto(f"/imports/{first}")
    sign_in(page, admin)
    page.wait_for_url(re.compile(rf"/imports/{first}$"))
    page.get_by_role("button", name="Undo").click()  # an older one: undone back to it
    assert (
        f"is not the newest applied import (#{bad} is)"
        in page.locator("#undo-back-to").inner_text()
    )
    page.goto(f"/imports/{bad}")
    page.get_by_role("button", name="Undo").click()
    assert page.locator("#undo-back-to").count() == 0
    changes = page.locator("ul.changes").inner_text()
    assert "deactivate 1 student" in changes  # S3, which the bad import added
    assert "update 1 student" in changes  # Ann's name and grade back
    assert "reactivate 1 student, 1 enrollment" in changes  # Bob and his class
    lists = page.locator("ul.change-lists")
    assert lists.get_by_role("link", name=f"Import #{bad}").get_attribute("href") == (
        f"/imports/{bad}/changes"
    )
    forged = page.request.post(f"/imports/{bad}/undo", form={"note": "forged"})
    assert forged.status == 403
    page.get_by_label("Note (optional, kept in the audit log)").fill("approved by mistake")
    screenshot(page, "undo")
    page.get_by_role("button", name="Confirm the undo").click()

    assert "Undone: the roster is back to what it was before import" in (
        page.get_by_role("status").inner_text()
    )
    assert manager.site.roster(tenant) == before
    undo_id = next(r["id"] for r in manager.site.imports() if r["source"] == "undo"
                   and r["tenant"] == tenant)  # fmt: skip
    assert page.url.endswith(f"/imports/{bad}/undo")
    assert page.get_by_role("heading", level=1).inner_text().startswith(f"Import #{undo_id}")
    audit = page.locator("#audit + table").inner_text()
    assert "undo" in audit
    assert "approved by mistake" in audit
    assert admin in audit

    page.get_by_role("button", name="Sign out").click()
    page.goto("/signin")
    sign_in(page, other_admin)
    page.wait_for_url(re.compile(r"/imports$"))
    assert page.request.get(f"/imports/{undo_id}/undo").status == 404
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    refused = page.request.post(f"/imports/{undo_id}/undo", form={"csrf_token": token or ""})
    assert refused.status == 404
    assert manager.site.roster(tenant) == before
