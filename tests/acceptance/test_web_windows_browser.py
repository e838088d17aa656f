"""The school year in a real browser (chromium through Playwright) against the real
`rosterdrop serve`: a district adds a pause window on its Setup page and removes it, and an
import paused because one school would lose its students names that school on its page.

Set ROSTERDROP_WEB_SCREENSHOTS=docs to refresh the README's screenshots from these pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.test_web_browser import (  # the module's daemon, page and sign-in
    SCREENSHOTS,
    Manager,
    manager,
    page,
    sign_in,
)
from tests.support.browser import browser  # noqa: F401 - the module's chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]
__all__ = ["manager", "page"]  # fixtures used by name


def section_shot(page: Any, section: str, name: str) -> None:
    if SCREENSHOTS:
        where = page.locator(f"section[aria-labelledby={section}]")
        where.screenshot(path=str(Path(SCREENSHOTS) / f"web-{name}.png"))


def test_a_district_adds_a_pause_window_on_its_setup_page_and_removes_it(
    page: Any, manager: Manager
) -> None:
    tenant, admin = manager.district()
    today = datetime.now(UTC).date()
    starts, ends = today + timedelta(days=190), today + timedelta(days=250)
    page.goto("/signin")
    sign_in(page, admin)
    page.goto(f"/tenants/{tenant}/setup")

    page.get_by_label("From (first day held)").fill(starts.isoformat())
    page.get_by_label("To (last day held)").fill(ends.isoformat())
    page.get_by_label("Note").fill("summer rollover")
    page.get_by_label("Expect up to % changes after it (optional)").fill("60")
    page.get_by_role("button", name="Add pause window").click()
    assert "tick the box that confirms" in page.get_by_role("alert").inner_text()
    page.get_by_label("I confirm the expected changes").check()
    page.get_by_role("button", name="Add pause window").click()

    assert "was added" in page.get_by_role("status").inner_text()
    row = page.locator("section[aria-labelledby=windows] tbody tr").first
    assert row.inner_text().split("\t")[:2] == [starts.isoformat(), ends.isoformat()]
    assert "up to 60%, once (confirmed by" in row.inner_text()
    assert "to come" in row.inner_text()
    section_shot(page, "windows", "setup-windows")
    audit = page.locator("section[aria-labelledby=audit]").inner_text()
    assert "pause_window_added" in audit

    page.get_by_role(
        "button", name=f"Remove the pause window {starts.isoformat()} to {ends.isoformat()}"
    ).click()
    assert "was removed" in page.get_by_role("status").inner_text()
    assert "No pause windows" in page.locator("section[aria-labelledby=windows]").inner_text()
    listed = manager.site.cli("tenant", "pause", "list", tenant)
    assert listed.stdout.strip() == f"{tenant} has no pause windows"


def two_schools(oak_hill_students: int) -> dict[str, list[list[str]]]:
    """Lincoln with 60 students, Oak Hill with `oak_hill_students` (one enrolled each)."""
    lincoln = [["SCH1", f"L{n:02d}", "Kid", f"L{n}", "", f"l{n}", "03"] for n in range(60)]
    oak = [
        ["SCH2", f"O{n:02d}", "Kid", f"O{n}", "", f"o{n}", "04"] for n in range(oak_hill_students)
    ]
    return {
        "schools.csv": [["SCH1", "Lincoln"], ["SCH2", "Oak Hill"]],
        "teachers.csv": [
            ["SCH1", "T1", "Ada", "Lovelace", "ada@district.org"],
            ["SCH2", "T2", "Alan", "Turing", "alan@district.org"],
        ],
        "students.csv": [*lincoln, *oak],
        "sections.csv": [
            ["SCH1", "SEC1", "T1", "Math 3", "", ""],
            ["SCH2", "SEC2", "T2", "Art", "", ""],
        ],
        "enrollments.csv": [["SCH1", "SEC1", "L00"], ["SCH2", "SEC2", "O00"]],
    }


def test_an_import_paused_for_one_school_names_it_on_its_page(page: Any, manager: Manager) -> None:
    tenant, admin = manager.district()
    manager.run_import(tenant, two_schools(6))
    import_id = manager.run_import(tenant, two_schools(1))  # 5 of 66 students: under 10 %
    assert manager.state(import_id) == "paused"
    page.goto("/signin")
    sign_in(page, admin)

    page.goto(f"/imports/{import_id}")

    thresholds = page.locator("section[aria-labelledby=thresholds]")
    first_row = thresholds.locator("tbody tr").first.inner_text()
    assert re.split(r"\t", first_row) == [
        "students at Oak Hill (school SCH2)", "deactivated", "5 of 6", "83.3%", "10%",
    ]  # fmt: skip
    assert (
        "would deactivate 5 of 6 active students at Oak Hill (school SCH2) (83.3%, limit 10%)"
        in thresholds.inner_text()
    )
    section_shot(page, "thresholds", "import-per-school")
