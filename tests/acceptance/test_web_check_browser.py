"""A district's check in a real browser (chromium) against the real `rosterdrop serve`: a
test export put into /check over SFTP, its answer on the Checks page, and the Setup switch
that emails the answers too. ROSTERDROP_WEB_SCREENSHOTS=docs refreshes docs/web-check.png."""

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
from tests.support import checks, drop
from tests.support.browser import browser  # noqa: F401 - the session's chromium
from tests.support.drop import District
from tests.support.site import PASSWORD as SFTP_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_district_checks_a_test_export_and_reads_the_answer(
    page: Any,  # noqa: F811 - the fixture imported above
    manager: Manager,  # noqa: F811
) -> None:
    tenant, admin = manager.district()
    files = District(tenant, students=40).files()
    files["teachers.csv"] = files["teachers.csv"].replace(b"t0@example.org", HOSTILE.encode())
    checks.check_set(manager.daemon.sftp_port, tenant, SFTP_PASSWORD, files)
    with manager.site.db() as db:
        [row] = drop.poll(lambda: checks.ended_checks(db, tenant, 1), 30, "the check")

    page.goto("/signin")
    sign_in(page, admin)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Checks").click()
    page.wait_for_url(re.compile(r"/checks$"))
    listed = page.get_by_role("table").inner_text()
    assert f"#{row['id']}" in listed
    assert row["results_name"] in listed
    page.get_by_role("link", name=f"#{row['id']}").click()
    assert "would PAUSE" in page.locator("#verdict").inner_text()
    assert "this district allows 0" in page.locator(".sentences").inner_text()
    problems = page.locator("#problems + table").inner_text()
    assert HOSTILE in problems  # the CSV's value, shown as text
    assert "teachers.csv:2:teacher_email" in problems
    assert page.locator("script").count() == 0
    screenshot(page, "check", full_page=True)
    assert manager.site.imports(tenant) == []  # a check is no import

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Setup").click()
    page.get_by_label("Also email each check's answer to the notification addresses").check()
    section = page.locator("section[aria-labelledby=check-folder]")
    section.get_by_role("button", name="Save").click()
    assert page.get_by_role("status").inner_text() == "Check answers are emailed too."
    audit = page.locator("section[aria-labelledby=audit] table").inner_text()
    assert "check_emails" in audit
    assert admin in audit
