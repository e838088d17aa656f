"""The Setup page's pause windows and per-school box in this process over each kind of
database: windows added and removed, checked as `tenant pause add` checks them, a one-time
override only when confirmed, each change audited, another tenant's window not found, no POST
without its token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from daemon.config import Settings, WindowSettings
from daemon.store import tenants, windows
from daemon.store.database import Database
from daemon.store.tables import audit_log
from tests.integration.test_web_app import START, Web, add_user, csrf_of, web_for


@pytest.fixture
async def web(settings: Settings, db: Database) -> AsyncIterator[Web]:
    async with web_for(settings, db) as made:
        add_user(made.db, "north-admin", "north")
        add_user(made.db, "south-admin", "south")
        yield made


def day(days: int) -> str:
    """A day relative to the web's clock (its today)."""
    return (START.date() + timedelta(days=days)).isoformat()


async def post(web: Web, what: str, data: dict[str, str], tenant: str = "north") -> tuple[int, str]:
    csrf = csrf_of(await (await web.client.get(f"/tenants/{tenant}/setup")).text())
    response = await web.client.post(
        f"/tenants/{tenant}/setup/{what}", data={"csrf_token": csrf, **data}
    )
    return response.status, await response.text()


def listed(web: Web, tenant: str = "north") -> list[tuple[str, str, str, float | None]]:
    with web.db.read() as conn:
        found = windows.list_for(conn, tenants.get(conn, tenant).id)
    return [
        (w.starts_on.isoformat(), w.ends_on.isoformat(), w.note, w.expect_percent) for w in found
    ]


def actions(web: Web) -> list[tuple[str, str, str]]:
    with web.db.read() as conn:
        rows = conn.execute(
            sa.select(audit_log.c.action, audit_log.c.user_name, audit_log.c.detail).order_by(
                audit_log.c.id
            )
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def test_a_district_adds_a_window_and_removes_it_each_audited(web: Web) -> None:
    assert await web.sign_in("north-admin") == 303

    status, html = await post(
        web, "windows", {"starts_on": day(10), "ends_on": day(60), "note": "summer rollover"}
    )

    assert status == 200
    assert f"The pause window {day(10)} to {day(60)} (summer rollover) was added" in html
    assert listed(web) == [(day(10), day(60), "summer rollover", None)]
    assert "to come" in html
    with web.db.read() as conn:
        [window] = windows.list_for(conn, tenants.get(conn, "north").id)
    status, html = await post(web, "windows/remove", {"window_id": str(window.id)})
    assert status == 200
    assert "was removed" in html
    assert listed(web) == []
    assert [a for a, _, _ in actions(web)] == ["pause_window_added", "pause_window_removed"]
    assert {who for _, who, _ in actions(web)} == {"north-admin"}


async def test_a_window_is_checked_as_the_cli_checks_it(web: Web) -> None:
    assert await web.sign_in("north-admin") == 303
    for form, said in (
        ({"starts_on": day(5), "ends_on": day(2)}, "before it starts"),
        ({"starts_on": day(-9), "ends_on": day(-1)}, "the window ended already"),
        ({"starts_on": "June 10", "ends_on": day(2)}, "is not a date (YYYY-MM-DD)"),
        ({"starts_on": day(1), "ends_on": day(400)}, "at most 366 days"),
        ({"starts_on": day(1), "ends_on": day(9), "expect_percent": "60"}, "tick the box"),
        (
            {
                "starts_on": day(1),
                "ends_on": day(9),
                "expect_percent": "160",
                "confirm_expect": "on",
            },
            "at most 100 %",
        ),
    ):
        status, html = await post(web, "windows", form)
        assert status == 400, form
        assert said in html, form
    assert listed(web) == []
    assert actions(web) == []

    status, _ = await post(
        web, "windows",
        {"starts_on": day(1), "ends_on": day(9), "expect_percent": "60", "confirm_expect": "on"},
    )  # fmt: skip
    assert status == 200
    assert listed(web) == [(day(1), day(9), "", 60.0)]
    assert "expect up to 60% changes (confirmed by north-admin)" in actions(web)[0][2]


async def test_another_tenants_window_is_not_found_and_no_post_goes_without_its_token(
    web: Web,
) -> None:
    assert await web.sign_in("north-admin") == 303
    await post(web, "windows", {"starts_on": day(1), "ends_on": day(9)})
    with web.db.read() as conn:
        [north] = windows.list_for(conn, tenants.get(conn, "north").id)
    assert await web.sign_in("south-admin") == 303

    status, _ = await post(web, "windows/remove", {"window_id": str(north.id)}, tenant="south")
    assert status == 404
    # An id past the largest the database holds is no window either (not a server error).
    status, _ = await post(web, "windows/remove", {"window_id": str(2**63)}, tenant="south")
    assert status == 404
    for what, form in (
        ("windows", {"starts_on": day(1), "ends_on": day(9)}),
        ("windows/remove", {"window_id": str(north.id)}),
    ):
        response = await web.client.post(f"/tenants/north/setup/{what}", data=form)
        assert response.status in (403, 404), what
        response = await web.client.post(f"/tenants/south/setup/{what}", data=form)
        assert response.status == 403, what
    assert len(listed(web)) == 1
    assert [a for a, _, _ in actions(web)] == ["pause_window_added"]


async def test_the_per_school_box_turns_the_school_counts_off_and_on_audited(web: Web) -> None:
    assert await web.sign_in("north-admin") == 303
    shown = await (await web.client.get("/tenants/north/setup")).text()
    assert 'id="per_school" name="per_school" value="on" checked' in shown  # on by default
    thresholds = {
        "max_deactivate_percent": "10", "max_update_percent": "75", "threshold_floor": "5",
        "max_row_errors": "0", "per_school_shown": "1",
    }  # fmt: skip

    status, html = await post(web, "thresholds", thresholds)  # the box left unticked

    assert status == 200
    assert 'id="per_school" name="per_school" value="on">' in html
    with web.db.read() as conn:
        assert tenants.get(conn, "north").settings.per_school is False
    status, _ = await post(web, "thresholds", {**thresholds, "per_school": "on"})
    with web.db.read() as conn:
        assert tenants.get(conn, "north").settings.per_school is True
    assert [d for a, _, d in actions(web)] == [
        "per_school: True → False",
        "per_school: False → True",
    ]


async def test_a_tenant_the_operator_adds_gets_the_configured_yearly_window(web: Web) -> None:
    web.ctx.windows = WindowSettings(new_tenant="06-15..08-10")
    add_user(web.db, "ops", None)
    assert await web.sign_in("ops") == 303
    csrf = csrf_of(await (await web.client.get("/operator/tenants")).text())

    added = await web.client.post(
        "/operator/tenants", data={"csrf_token": csrf, "name": "fresh", "emails": "a@fresh.org"}
    )

    assert added.status == 200
    assert listed(web, "fresh") == [("2027-06-15", "2027-08-10", "school year rollover", None)]
    assert [a for a, who, _ in actions(web) if who == "ops"] == [
        "tenant_added",
        "pause_window_added",
    ]
