"""The threshold rules at their edges, on plans built by hand."""

from __future__ import annotations

import pytest

from daemon.roster.plan import EntityChanges, Plan
from daemon.roster.tenant import TenantSettings
from daemon.roster.thresholds import TrippedThreshold, evaluate

DEFAULTS = TenantSettings()
ROWS = 4200  # rows read in all five files


def plan(*, first_import: bool = False, **changes: EntityChanges) -> Plan:
    return Plan(dict(changes), first_import=first_import)


def rules(tripped: list[TrippedThreshold]) -> list[tuple[str, str, int, int]]:
    return [(t.rule, t.entity, t.count, t.total) for t in tripped]


@pytest.mark.parametrize(
    ("active", "deactivated", "trips"),
    [
        (50, 5, False),  # exactly 10 %
        (50, 6, True),  # 12 %
        (1000, 100, False),
        (1000, 101, True),
        (20, 4, False),  # 20 %, but under the floor of 5 rows
        (20, 5, True),  # 25 %, at the floor
        (4, 4, False),  # a whole tiny school: still under the floor
    ],
)
def test_deactivations_trip_above_ten_percent_from_the_floor_up(
    active: int, deactivated: int, trips: bool
) -> None:
    students = EntityChanges(active_before=active, deactivated=deactivated)

    tripped = evaluate(plan(students=students), 0, ROWS, DEFAULTS)

    expected = [("deactivate", "students", deactivated, active)] if trips else []
    assert rules(tripped) == expected


@pytest.mark.parametrize(
    ("active", "updated", "trips"),
    [(20, 15, False), (20, 16, True), (4, 4, False), (6, 5, True), (100, 75, False)],
)
def test_updates_trip_above_seventy_five_percent(active: int, updated: int, trips: bool) -> None:
    teachers = EntityChanges(active_before=active, updated=updated)

    tripped = evaluate(plan(teachers=teachers), 0, ROWS, DEFAULTS)

    assert rules(tripped) == ([("update", "teachers", updated, active)] if trips else [])


def test_a_first_import_never_trips_deactivations_but_still_trips_updates() -> None:
    students = EntityChanges(active_before=10, deactivated=10, updated=10)

    tripped = evaluate(plan(first_import=True, students=students), 0, ROWS, DEFAULTS)

    assert rules(tripped) == [("update", "students", 10, 10)]


def test_nothing_active_before_trips_nothing() -> None:
    assert evaluate(plan(students=EntityChanges(added=5000)), 0, ROWS, DEFAULTS) == []


@pytest.mark.parametrize(
    ("allowed", "errors", "trips"), [(0, 0, False), (0, 1, True), (3, 3, False), (3, 4, True)]
)
def test_row_errors_pause_beyond_what_the_tenant_allows(
    allowed: int, errors: int, trips: bool
) -> None:
    settings = TenantSettings(max_row_errors=allowed)

    tripped = evaluate(plan(), errors, ROWS, settings)

    assert rules(tripped) == ([("row_errors", "all files", errors, ROWS)] if trips else [])


def test_each_entity_and_rule_is_reported_on_its_own() -> None:
    changes = {
        "students": EntityChanges(active_before=50, deactivated=6, updated=40),
        "enrollments": EntityChanges(active_before=100, deactivated=11),
        "teachers": EntityChanges(active_before=10, deactivated=1),
    }

    tripped = evaluate(plan(**changes), 2, ROWS, DEFAULTS)

    assert rules(tripped) == [
        ("row_errors", "all files", 2, ROWS),
        ("deactivate", "students", 6, 50),
        ("update", "students", 40, 50),
        ("deactivate", "enrollments", 11, 100),
    ]


def test_a_tenant_can_tighten_the_floor_and_the_limits() -> None:
    settings = TenantSettings(max_deactivate_percent=0, threshold_floor=0)
    one = EntityChanges(active_before=1000, deactivated=1)

    assert rules(evaluate(plan(schools=one), 0, ROWS, settings)) == [
        ("deactivate", "schools", 1, 1000)
    ]


def test_a_tripped_threshold_says_what_and_by_how_much() -> None:
    threshold = TrippedThreshold("deactivate", "students", 6, 50, 10.0)

    assert threshold.describe() == "would deactivate 6 of 50 active students (12.0%, limit 10%)"
    assert threshold.as_dict()["percent"] == 12.0
    assert TrippedThreshold.from_dict(threshold.as_dict()) == threshold
    many = TrippedThreshold("deactivate", "students", 1200, 12000, 5.0)
    assert many.describe() == "would deactivate 1,200 of 12,000 active students (10.0%, limit 5%)"


def test_rows_with_errors_are_a_share_of_the_rows_read() -> None:
    [errors] = evaluate(plan(), 8, ROWS, DEFAULTS)

    assert errors.describe() == "8 rows with errors of 4,200 read (0.2%; this district allows 0)"
    assert errors.as_dict() == {
        **errors.as_dict(), "count": 8, "total": 4200, "percent": 0.19, "limit": 0,
    }  # fmt: skip
    assert TrippedThreshold.from_dict(errors.as_dict()) == errors
    one = TrippedThreshold("row_errors", "all files", 1, 120_000, 0)
    assert one.describe() == "1 row with errors of 120,000 read (<0.1%; this district allows 0)"
    # A pause recorded before the rows read were kept with it still reads true.
    older = TrippedThreshold("row_errors", "all files", 1, 0, 0)
    assert older.describe() == "1 row with errors (this district allows 0)"


def test_reactivations_count_as_changes_of_the_records_there_would_be() -> None:
    students = EntityChanges(active_before=4, reactivated=16)

    tripped = evaluate(plan(students=students), 0, ROWS, DEFAULTS)

    assert rules(tripped) == [("update", "students", 16, 20)]  # 80 % of the 20 there would be
    assert (
        evaluate(plan(students=students), 0, ROWS, DEFAULTS.updated(max_update_percent=100)) == []
    )


def test_updates_of_extra_columns_alone_do_not_count() -> None:
    students = EntityChanges(active_before=20, updated=20, extra_only=18)

    assert evaluate(plan(students=students), 0, ROWS, DEFAULTS) == []
