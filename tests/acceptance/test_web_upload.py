"""Choose Files in a real browser (chromium through Playwright) against the real `rosterdrop
serve`: a district chooses its five files, sees the dry run, presses Process Import, and the
daemon's own import worker imports them (source `web`, emails and all); a file with errors
shows them with file and line, and a dry run that would trip a threshold says so, and the
import it processes pauses.

Set ROSTERDROP_WEB_SCREENSHOTS=docs to refresh the README's screenshot of the page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance import test_web_browser as web_browser
from tests.acceptance.test_web_browser import HOSTILE, Manager, screenshot, sign_in
from tests.support import clever
from tests.support.browser import browser  # noqa: F401 - the module's chromium
from tests.support.process import wait_until
from tests.support.site import Site

pytestmark = [pytest.mark.browser, pytest.mark.slow]
# Low enough that a test file passes it, far above the five files of the other tests.
MAX_FILE_BYTES = 1 << 20
page = web_browser.page  # the browser tests' pages, reused rather than copied


@pytest.fixture(scope="module")
def manager(tmp_path_factory: pytest.TempPathFactory, host_keys: Path) -> Iterator[Manager]:
    """The browser tests' daemon, with a per-file bound a test can pass."""
    root = tmp_path_factory.mktemp("web-upload")
    site = Site.create(root, host_keys, ROSTERDROP_WEB_UPLOAD_MAX_FILE_BYTES=str(MAX_FILE_BYTES))
    with site.daemon() as daemon:
        daemon.ready()
        port = daemon.find("rosterdrop is ready")[0]["web_port"]
        yield Manager(site, daemon, f"http://127.0.0.1:{port}", root)
        assert daemon.stop() == 0
    site.close()


def choose(tab: Any, folder: Path) -> None:
    """Pick the folder's five files in the one file field, then Check files."""
    paths = sorted(str(p) for p in folder.iterdir())
    tab.get_by_label("The five Clever files").set_input_files(paths)
    tab.get_by_role("button", name="Check files").click()


def import_id_of(tab: Any) -> int:
    tab.wait_for_url(re.compile(r"/imports/\d+$"))
    return int(tab.url.rsplit("/", 1)[1])


def test_a_district_uploads_its_five_files_sees_the_dry_run_and_processes_them(
    page: Any, manager: Manager, tmp_path: Path
) -> None:
    tenant, admin = manager.district()
    files = clever.minimal_files()
    files["students.csv"].append(["SCH1", "S3", "Zoë", HOSTILE, "", "zoe", "05"])
    folder = clever.write_upload(tmp_path / "export", files)
    page.goto("/signin")
    sign_in(page, admin)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Choose Files").click()
    page.wait_for_url(re.compile(rf"/tenants/{tenant}/upload$"))
    choose(page, folder)

    verdict = page.locator("#dry-run-verdict").inner_text()
    assert (
        verdict
        == "Processing would apply these changes straight away: no threshold would pause it."
    )
    table = page.locator("#files-table + .scroll table").inner_text()
    assert re.search(r"students\.csv\s+3\s+3", table)  # 3 rows read, 3 to add
    assert manager.students(tenant) == set()  # only checked: nothing applied yet

    page.get_by_role("button", name="Process Import").click()
    import_id = import_id_of(page)
    assert "by web" in page.locator(".timeline").inner_text()
    wait_until(lambda: manager.state(import_id) == "imported", 20, "the import")
    assert manager.students(tenant) == {"S1", "S2", "S3"}
    names = {s["last_name"] for s in manager.site.roster(tenant)["students"]}
    assert HOSTILE in names  # kept as the district wrote it, and shown as text
    started = manager.daemon.wait_for("import started", import_id=import_id)
    assert started["tenant"] == tenant  # the daemon's own worker ran it
    wait_until(
        lambda: [e["import_id"] for e in manager.site.emails("import_results")].count(import_id),
        20,
        "its Import Results email",
    )
    row = next(r for r in manager.site.imports(tenant) if r["id"] == import_id)
    assert row["source"] == "web"
    audit = page.locator("#audit + table").inner_text()
    assert "upload_processed" in audit
    assert admin in audit


def test_errors_show_with_file_and_line_and_a_tripped_threshold_pauses_the_import(
    page: Any, manager: Manager, tmp_path: Path
) -> None:
    tenant, admin = manager.district()
    manager.run_import(tenant, clever.minimal_files())
    before = manager.students(tenant)
    files = clever.minimal_files()
    files["students.csv"].append(["SCH9", "S4", "Eve", "Ng", "", "eve", "05"])  # line 4
    folder = clever.write_upload(tmp_path / "export", files)
    page.goto(f"/tenants/{tenant}/upload")
    sign_in(page, admin)
    page.wait_for_url(re.compile(rf"/tenants/{tenant}/upload$"))
    choose(page, folder)

    problems = page.locator("table.problems").inner_text()
    assert "students.csv:4" in problems
    assert "SCH9" in problems
    verdict = page.locator("#dry-run-verdict").inner_text()
    assert "Processing would pause the import for review" in verdict
    assert "this district allows 0" in page.locator(".sentences").inner_text()
    assert page.locator("script").count() == 0
    screenshot(page, "upload", full_page=True)

    page.get_by_role("button", name="Process Import").click()
    import_id = import_id_of(page)
    wait_until(lambda: manager.state(import_id) == "paused", 20, "the pause")
    page.reload()
    assert page.get_by_role("button", name="Approve").is_visible()
    assert manager.students(tenant) == before  # paused: nothing applied


def test_a_file_past_the_bound_is_refused_naming_it_and_the_checked_one_stays(
    page: Any, manager: Manager, tmp_path: Path
) -> None:
    tenant, admin = manager.district()
    page.goto(f"/tenants/{tenant}/upload")
    sign_in(page, admin)
    choose(page, clever.write_upload(tmp_path / "good", clever.minimal_files()))
    assert page.get_by_role("button", name="Process Import").is_visible()

    files = clever.minimal_files()
    many = MAX_FILE_BYTES // 40 * 4  # about four times the bound, in rows of ~40 bytes
    files["enrollments.csv"] = [["SCH1", "SEC1", f"S{n:030d}"] for n in range(many)]
    choose(page, clever.write_upload(tmp_path / "big", files))
    error = page.get_by_role("alert").inner_text()
    assert error.startswith("enrollments.csv is larger than 1 MiB")
    assert "upload it by SFTP instead" in error
    assert page.get_by_role("button", name="Process Import").is_visible()  # nothing lost
    assert "5 files, " in page.locator("#dry-run").locator("..").inner_text()
