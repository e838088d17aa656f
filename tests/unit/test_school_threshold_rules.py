"""The per-school deactivation rule at its edges, on plans built by hand."""

from __future__ import annotations

import pytest

from daemon.roster.plan import EntityChanges, Plan, SchoolDeactivations
from daemon.roster.tenant import TenantSettings
from daemon.roster.thresholds import TrippedThreshold, evaluate

DISTRICT = EntityChanges(active_before=1000, deactivated=40)  # 4 %: the district never trips


def plan(*schools: SchoolDeactivations, first_import: bool = False) -> Plan:
    return Plan({"students": DISTRICT}, first_import, tuple(schools))


def oak_hill(active: int, deactivated: int) -> SchoolDeactivations:
    return SchoolDeactivations("students", "SCH2", "Oak Hill", active, deactivated)


@pytest.mark.parametrize(
    ("active", "deactivated", "trips"),
    [(50, 5, False), (50, 6, True), (6, 4, False), (6, 5, True), (40, 40, True)],
)
def test_a_school_trips_with_the_districts_limit_and_floor(
    active: int, deactivated: int, trips: bool
) -> None:
    tripped = evaluate(plan(oak_hill(active, deactivated)), 0, 1, TenantSettings())

    assert [(t.school, t.count, t.total) for t in tripped] == (
        [("SCH2", deactivated, active)] if trips else []
    )


def test_per_school_off_or_a_first_import_weighs_no_school() -> None:
    lost = oak_hill(40, 40)

    assert evaluate(plan(lost), 0, 1, TenantSettings(per_school=False)) == []
    assert evaluate(plan(lost, first_import=True), 0, 1, TenantSettings()) == []


def test_an_entity_tripping_over_the_district_is_not_weighed_again_per_school() -> None:
    whole = Plan(
        {"students": EntityChanges(active_before=100, deactivated=40)}, False, (oak_hill(40, 40),)
    )

    assert [t.school for t in evaluate(whole, 0, 1, TenantSettings())] == [""]


def test_a_school_trip_survives_its_round_trip_through_the_database_json() -> None:
    tripped = evaluate(plan(oak_hill(40, 40)), 0, 1, TenantSettings())[0]

    again = TrippedThreshold.from_dict(tripped.as_dict())

    assert again == tripped
    assert again.key == ("deactivate", "students", "SCH2")
    assert again.describe() == (
        "would deactivate 40 of 40 active students at Oak Hill (school SCH2) (100.0%, limit 10%)"
    )
