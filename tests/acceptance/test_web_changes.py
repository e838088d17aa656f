"""The change browser in a real browser (chromium through Playwright) against the real
`rosterdrop serve`: a district reviews a paused import record by record — the names of the
students it would deactivate, an updated field's before → after, a search, the CSV — then
approves it, and the roster is what it read. Hostile CSV values show as text.

Set ROSTERDROP_WEB_SCREENSHOTS=docs to refresh the README's screenshot of the page."""

from __future__ import annotations

import csv
import re
from typing import Any

import pytest

from tests.acceptance.test_web_browser import (  # noqa: F401 - the module's daemon and pages
    HOSTILE,
    Manager,
    manager,
    page,
    screenshot,
    sign_in,
)
from tests.support import clever
from tests.support.browser import browser  # noqa: F401 - the module's chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HOSTILE_NAME = '<img src=x onerror="alert(1)">'


def paused_with_changes(manager: Manager, tenant: str) -> int:  # noqa: F811
    """After a first import: S2 (Bob Kim) and its enrollment gone, S1's last name and grade
    changed, S3 new with a hostile first name, S4 a row error (so it pauses)."""
    files = clever.minimal_files()
    manager.run_import(tenant, files)
    files["students.csv"] = [
        ["SCH1", "S1", "Ann", "Lee-Smith", "ann@students.org", "ann", "04"],
        ["SCH1", "S3", HOSTILE_NAME, "Ng", "", "cy", "05"],
        [HOSTILE, "S4", "Eve", "Evil", "", "eve", "05"],
    ]
    files["enrollments.csv"] = [["SCH1", "SEC1", "S1"]]
    import_id = manager.run_import(tenant, files)
    assert manager.state(import_id) == "paused"
    return import_id


def test_a_district_reviews_the_records_of_its_paused_import_then_approves_it(
    page: Any,  # noqa: F811
    manager: Manager,  # noqa: F811
) -> None:
    tenant, admin = manager.district()
    import_id = paused_with_changes(manager, tenant)
    page.goto("/imports")
    sign_in(page, admin)
    page.get_by_role("table", name="Paused: waiting for your review").get_by_role(
        "link", name=f"#{import_id}"
    ).click()
    page.wait_for_url(re.compile(rf"/imports/{import_id}$"))

    # The per-file table's count opens its list: the students this import would deactivate.
    page.get_by_role("link", name="1 deactivated: students.csv").click()
    page.wait_for_url(re.compile(rf"/imports/{import_id}/changes\?"))
    records = page.locator("#records")
    assert records.inner_text() == "Students to deactivate: 1"
    table = page.locator("table.changes")
    assert "Bob Kim" in table.inner_text()
    assert "S2" in table.inner_text()

    by_change = page.get_by_role("navigation", name="Records by change")
    by_change.get_by_role("link", name="Updated: 1").click()
    row = page.locator("table.changes tbody tr")
    assert "Ann Lee-Smith" in row.inner_text()
    assert "last_name: Lee → Lee-Smith" in row.inner_text()
    assert "grade: 03 → 04" in row.inner_text()
    screenshot(page, "changes", full_page=True)

    by_change.get_by_role("link", name="Added: 1").click()
    assert HOSTILE_NAME in page.locator("table.changes").inner_text()  # shown as text
    assert page.locator("table.changes img").count() == 0

    page.get_by_label("Change", exact=True).select_option("deactivate")
    page.get_by_label("Search by id or name").fill("kim")
    page.get_by_role("button", name="Show").click()
    assert "Bob Kim" in page.locator("table.changes").inner_text()
    page.get_by_label("Search by id or name").fill("ann")
    page.get_by_role("button", name="Show").click()
    assert "No record matches this search." in page.locator("table.changes").inner_text()
    page.get_by_label("Search by id or name").fill("")
    page.get_by_role("button", name="Show").click()

    with page.expect_download() as download:
        page.get_by_role("link", name="Download this list (CSV)").click()
    path = download.value.path()
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["student_id"], r["name"], r["change"]) for r in rows] == [
        ("S2", "Bob Kim", "deactivate")
    ]

    page.get_by_role("link", name="Back to the import").click()
    page.get_by_role("button", name="Approve").click()
    confirm = page.locator("ul.change-lists")
    assert confirm.get_by_role("link", name="1 student to deactivate").count() == 1
    page.get_by_role("button", name="Confirm").click()
    assert "Approved: the import was applied" in page.get_by_role("status").inner_text()
    assert manager.students(tenant) == {"S1", "S3"}  # as the lists said: S2 gone, S3 added
    assert manager.state(import_id) == "imported_with_errors"

    # Applied, it shows what it did.
    page.get_by_role("link", name="1 deactivated: students.csv").click()
    assert page.locator("#records").inner_text() == "Students this import deactivated: 1"
    assert "Bob Kim" in page.locator("table.changes").inner_text()


def test_a_district_pages_through_the_students_its_first_import_added(
    page: Any,  # noqa: F811
    manager: Manager,  # noqa: F811
) -> None:
    """An applied first import's 120 students (read from the roster): Next, Previous, First
    and Last walk the three pages of 50, each link continuing from the record it names."""
    tenant, admin = manager.district()
    files = clever.minimal_files()
    files["students.csv"] = [
        ["SCH1", f"S{n:03d}", "Kid", f"No{n:03d}", "", f"kid{n}", "05"] for n in range(1, 121)
    ]
    files["enrollments.csv"] = [["SCH1", "SEC1", "S001"]]
    import_id = manager.run_import(tenant, files)
    assert manager.state(import_id) == "imported"
    page.goto(f"/imports/{import_id}/changes?entity=students&kind=add")
    sign_in(page, admin)
    page.wait_for_url(re.compile(rf"/imports/{import_id}/changes\?"))
    assert page.locator("#records").inner_text() == "Students this import added: 120"
    pager = page.get_by_role("navigation", name="Record pages")
    table = page.locator("table.changes tbody")

    def on_page(number: int, first: int, last: int, *, followed: bool = True) -> None:
        if followed:  # a link's page has loaded, not still the one before it
            page.wait_for_url(re.compile(rf"[?&]page={number}(&|#|$)"))
        assert f"Page {number} of 3" in pager.inner_text()
        rows = table.locator("tr")
        assert rows.count() == last - first + 1
        assert f"S{first:03d}" in rows.first.inner_text()
        assert f"S{last:03d}" in rows.last.inner_text()

    on_page(1, 1, 50, followed=False)
    pager.get_by_role("link", name="Next").click()
    on_page(2, 51, 100)
    pager.get_by_role("link", name="Next").click()
    on_page(3, 101, 120)
    assert pager.get_by_role("link", name="Next").count() == 0
    pager.get_by_role("link", name="Previous").click()
    on_page(2, 51, 100)
    pager.get_by_role("link", name="Last").click()
    on_page(3, 101, 120)
    pager.get_by_role("link", name="First").press("Enter")  # the keyboard follows it too
    on_page(1, 1, 50)
