"""An import's five files as uploaded, downloaded in a real browser (chromium through
Playwright) from the real `rosterdrop serve`: byte for byte, secret columns as sent (and said),
each download audited; only the five names, never a path or a planted symlink; another
district's files are a 404, and so are expired ones, whose page says so."""

from __future__ import annotations

import http.client
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from daemon.clever.files import find_files
from daemon.passwords import hash_password
from daemon.pipeline import Pipeline
from daemon.store import imports, tenants, users
from tests.acceptance.test_web_browser import (  # noqa: F401 - the module's daemon and pages
    WEB_PASSWORD,
    Manager,
    manager,
    page,
    sign_in,
)
from tests.support import clever
from tests.support.browser import browser  # noqa: F401 - the module's chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# As a full Clever export sends it: a plain-text password column, a BOM, CRLF, a name in the
# SIS's own case.
STUDENTS = (
    "\ufeffschool_id,student_id,first_name,last_name,student_email,username,grade,Password\r\n"
    "SCH1,S1,Zoë,Lee,zoe@students.org,zoe,03,hunter2\r\n"
    'SCH1,S2,Bob,"Kim, Jr.",,bob,04,correct-horse\r\n'
).encode()


def import_with_password_column(manager: Manager, tenant: str) -> tuple[int, dict[str, bytes]]:  # noqa: F811
    """A first import whose `Students.csv` carries a Password column; and the bytes sent."""
    folder = clever.write_upload(manager.root / f"{tenant}-sent", clever.minimal_files())
    (folder / "students.csv").unlink()
    (folder / "Students.csv").write_bytes(STUDENTS)
    sent = {path.name.lower(): path.read_bytes() for path in folder.iterdir()}
    settings = manager.site.settings
    with manager.site.db() as db:
        with db.read() as conn:
            owner = tenants.get(conn, tenant)
        pipeline = Pipeline(db, settings.paths, settings.smtp)
        import_id = pipeline.receive(owner, find_files(folder), source="cli", move=False)
        pipeline.run(import_id)
    return import_id, sent


def files_dir(manager: Manager, import_id: int) -> Path:  # noqa: F811
    with manager.site.db() as db, db.read() as conn:
        return Path(imports.get(conn, import_id).files_dir or "")


def test_a_district_downloads_the_files_it_sent_exactly_as_sent(
    page: Any,  # noqa: F811
    manager: Manager,  # noqa: F811
) -> None:
    tenant, admin = manager.district()
    import_id, sent = import_with_password_column(manager, tenant)
    page.goto(f"/imports/{import_id}")
    sign_in(page, admin)
    page.wait_for_url(re.compile(rf"/imports/{import_id}$"))
    listed = page.locator("ul.uploaded")
    assert listed.get_by_role("link").all_inner_texts() == [
        "schools.csv", "Students.csv", "teachers.csv", "sections.csv", "enrollments.csv",
    ]  # fmt: skip
    assert f"({len(STUDENTS):,} bytes)" in listed.inner_text()
    assert "holds the column Password as sent" in listed.inner_text()

    with page.expect_download() as download:
        listed.get_by_role("link", name="Students.csv").click()
    assert download.value.suggested_filename == f"import-{import_id}-students.csv"
    assert Path(download.value.path()).read_bytes() == STUDENTS  # BOM, CRLF, password and all
    for name in ("schools.csv", "enrollments.csv"):
        answer = page.request.get(f"/imports/{import_id}/files/{name}")
        assert answer.status == 200
        assert answer.body() == sent[name]
        assert answer.headers["content-disposition"].startswith("attachment;")
        assert answer.headers["x-content-type-options"] == "nosniff"  # streamed, still sent
        assert answer.headers["cache-control"] == "no-store"

    page.reload()
    audit = page.locator("#audit + table").inner_text()
    assert "files_downloaded" in audit
    assert f"students.csv ({len(STUDENTS):,} bytes)" in audit
    assert admin in audit


def raw_get(manager: Manager, path: str, cookie: str) -> int:  # noqa: F811
    """The path sent exactly as written (a browser or a client library would tidy it)."""
    port = int(manager.url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        connection.putheader("Cookie", cookie)
        connection.endheaders()
        return connection.getresponse().status
    finally:
        connection.close()


def test_only_the_five_files_are_served_never_a_path_or_a_symlink(
    page: Any,  # noqa: F811
    manager: Manager,  # noqa: F811
) -> None:
    tenant, admin = manager.district()
    import_id, _ = import_with_password_column(manager, tenant)
    page.goto("/signin")
    sign_in(page, admin)
    page.wait_for_url(re.compile(r"/imports$"))
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies())
    base = f"/imports/{import_id}/files"
    assert raw_get(manager, f"{base}/schools.csv", cookie) == 200  # the session works
    for tricky in (
        "manifest.json", "problems.csv", "Students.csv", "STUDENTS.CSV", "students.csv.",
        "..%2Fmanifest.json", "%2E%2E%2F%2E%2E%2Fweb-secret.key", "..%5Cmanifest.json",
        "students.csv%00", "../problems.csv", "../../../../../../etc/passwd", "%2Fetc%2Fpasswd",
    ):  # fmt: skip
        assert raw_get(manager, f"{base}/{tricky}", cookie) == 404, tricky

    # A symlink planted in the import's folder in place of a file is not followed.
    folder = files_dir(manager, import_id)
    assert folder.is_relative_to(manager.site.settings.paths.archive)
    target = folder / "Students.csv"
    target.unlink()
    os.symlink(manager.site.settings.paths.root / "web-secret.key", target)
    assert page.request.get(f"{base}/students.csv").status == 404
    assert page.request.get(f"{base}/schools.csv").status == 200


def test_a_paused_imports_files_come_from_the_spool_for_the_district_and_operators_only(
    page: Any,  # noqa: F811
    manager: Manager,  # noqa: F811
) -> None:
    north, north_admin = manager.district()
    _, south_admin = manager.district()
    paused = manager.paused_import(north)
    assert files_dir(manager, paused).is_relative_to(manager.site.settings.paths.spool)
    page.goto("/signin")
    sign_in(page, south_admin)
    page.wait_for_url(re.compile(r"/imports$"))
    for name in ("students.csv", "schools.csv"):
        assert page.request.get(f"/imports/{paused}/files/{name}").status == 404
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, north_admin)
    page.wait_for_url(re.compile(r"/imports$"))
    answer = page.request.get(f"/imports/{paused}/files/students.csv")
    assert answer.status == 200
    assert b"<script>alert('x')</script>" in answer.body()  # as sent, as an attachment
    assert answer.headers["content-type"] == "text/csv"
    page.get_by_role("button", name="Sign out").click()

    # An operator sees every tenant: its files too.
    with manager.site.db() as db, db.write() as conn:
        users.add(
            conn, f"ops-{north}", tenant_id=None, email=None,
            password_hash=hash_password(WEB_PASSWORD), now=datetime.now(UTC),
        )  # fmt: skip
    sign_in(page, f"ops-{north}")
    page.wait_for_url(re.compile(r"/imports$"))
    assert page.request.get(f"/imports/{paused}/files/students.csv").body() == answer.body()


def test_expired_files_are_gone_and_the_page_says_so(
    page: Any,  # noqa: F811
    manager: Manager,  # noqa: F811
) -> None:
    tenant, admin = manager.district()
    import_id, _ = import_with_password_column(manager, tenant)
    settings = manager.site.settings
    later = datetime.now(UTC) + timedelta(days=settings.spool.retention_days + 1)
    with manager.site.db() as db:
        Pipeline(db, settings.paths, settings.smtp, clock=lambda: later).expire(
            settings.spool.retention_days
        )
    page.goto(f"/imports/{import_id}")
    sign_in(page, admin)
    page.wait_for_url(re.compile(rf"/imports/{import_id}$"))
    assert "The files of this import have expired" in page.locator("#files-expired").inner_text()
    assert page.locator("ul.uploaded").count() == 0
    assert page.request.get(f"/imports/{import_id}/files/students.csv").status == 404
