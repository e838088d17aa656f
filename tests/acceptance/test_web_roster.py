"""The roster pages in a real browser (chromium through Playwright) against the real
`rosterdrop serve`: a district finds a student by name, opens it, sees its sections and the
import that last changed it, lists the inactive ones too; another district's student is not
found; hostile names are text.

Set ROSTERDROP_WEB_SCREENSHOTS=docs to refresh the README's screenshots of these pages."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.acceptance.test_web_browser import (  # noqa: F401 - the fixtures, registered here
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


def roster_of(site: Manager, tenant: str) -> tuple[int, int]:
    """A first import, then one that moves Ann Lee up a grade and drops Bob Kim; a student
    with a hostile last name in both. Returns the two imports' ids."""
    files = clever.minimal_files()
    files["students.csv"].append(["SCH1", "S3", "Eve", HOSTILE, "", "eve", "05"])
    first = site.run_import(tenant, files)
    files["students.csv"] = [
        ["SCH1", "S1", "Ann", "Lee", "ann@students.org", "ann", "04"],
        ["SCH1", "S3", "Eve", HOSTILE, "", "eve", "05"],
    ]
    files["enrollments.csv"] = [["SCH1", "SEC1", "S1"], ["SCH1", "SEC1", "S3"]]
    second = site.run_import(tenant, files)
    assert site.state(first) == site.state(second) == "imported"
    return first, second


def test_a_district_finds_a_student_and_sees_its_sections_and_imports(
    page: Any,  # noqa: F811
    manager: Manager,  # noqa: F811
) -> None:
    tenant, admin = manager.district()
    _, second = roster_of(manager, tenant)
    page.goto("/signin")
    sign_in(page, admin)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Roster").click()
    page.wait_for_url(re.compile(r"/roster$"))
    assert page.get_by_role("heading", level=1).inner_text() == f"Roster of {tenant}"
    counts = page.locator("table.counts").inner_text()
    assert re.search(r"Students\s+2\s+1", counts)  # Ann and Eve active, Bob inactive

    page.locator("table.counts").get_by_role("link", name="Students", exact=True).click()
    page.get_by_label("Search").fill("LEE")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table.roster tbody tr")
    assert rows.count() == 1
    assert "Lee, Ann" in rows.inner_text()
    screenshot(page, "roster-students")

    rows.get_by_role("link", name="Lee, Ann").click()
    page.wait_for_url(re.compile(r"/roster/students/SCH1/S1$"))
    assert "Ann Lee" in page.get_by_role("heading", level=1).inner_text()
    sections = page.locator("table.sections").inner_text()
    assert "Math 3" in sections
    assert "Lovelace, Ada" in sections
    changed = page.locator("#changed-import")
    assert f"#{second}" in changed.inner_text()
    screenshot(page, "roster-student", full_page=True)
    changed.get_by_role("link", name=f"#{second}").click()
    page.wait_for_url(re.compile(rf"/imports/{second}$"))


def test_inactive_records_show_on_request_and_hostile_names_are_text(
    page: Any,  # noqa: F811
    manager: Manager,  # noqa: F811
) -> None:
    tenant, admin = manager.district()
    roster_of(manager, tenant)
    page.goto("/roster/students")
    sign_in(page, admin)
    page.wait_for_url(re.compile(r"/roster/students$"))
    listed = page.locator("table.roster").inner_text()
    assert "Kim, Bob" not in listed
    assert f"{HOSTILE}, Eve" in listed  # the CSV's value, shown as text
    assert page.locator("main script").count() == 0

    page.get_by_label("Include inactive records").check()
    page.get_by_role("button", name="Search").click()
    bob = page.locator("table.roster tbody tr", has_text="Kim, Bob")
    assert "inactive" in bob.inner_text()

    page.get_by_label("Search").fill(HOSTILE[:4])  # "<scr": the hostile name's beginning
    page.get_by_role("button", name="Search").click()
    hostile = page.locator("table.roster tbody tr")
    assert hostile.count() == 1
    hostile.get_by_role("link").first.click()
    assert HOSTILE in page.get_by_role("heading", level=1).inner_text()
    assert page.locator("main script").count() == 0


def test_another_districts_student_is_not_found(
    page: Any,  # noqa: F811
    manager: Manager,  # noqa: F811
) -> None:
    north, _ = manager.district()
    _, south_admin = manager.district()
    files = clever.minimal_files()
    files["students.csv"].append(["SCH1", "N9", "Nora", "North", "", "nora", "05"])
    manager.run_import(north, files)
    page.goto("/signin")
    sign_in(page, south_admin)
    page.wait_for_url(re.compile(r"/imports$"))
    for path in (
        "/roster/students/SCH1/N9",
        f"/roster?tenant={north}",
        f"/roster/students?tenant={north}&q=nora",
        f"/api/v1/roster/students?tenant={north}",
    ):
        assert page.request.get(path).status == 404, path
    page.goto("/roster/students?q=nora")
    assert "Nothing matches" in page.get_by_role("status").inner_text()
