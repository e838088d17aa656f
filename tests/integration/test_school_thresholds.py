"""Thresholds per school: a district losing one small school whole is paused, although the
district as a whole loses far less than its limit (both databases: the counts are SQL)."""

from __future__ import annotations

import copy
from pathlib import Path

from daemon.config import Settings
from daemon.pipeline import Pipeline
from daemon.roster.outcome import ImportState
from daemon.store.database import Database
from tests.integration.test_import_emails import last_email
from tests.support.clever import Snapshot
from tests.support.roster import add_tenant, pipeline_for, roster, run_import, set_tenant

BIG, SMALL = 100, 6  # students at Lincoln and at the small Oak Hill school


def two_schools() -> Snapshot:
    snap = Snapshot(schools={"SCH1": "Lincoln", "SCH2": "Oak Hill"})
    snap.teachers[("SCH1", "T1")] = ("Ada", "Lovelace", "ada@d.org")
    snap.teachers[("SCH2", "T2")] = ("Alan", "Turing", "alan@d.org")
    snap.sections[("SCH1", "C1")] = (("T1",), "Math", "", "")
    snap.sections[("SCH2", "C2")] = (("T2",), "Art", "", "")
    for n in range(BIG):
        snap.students[("SCH1", f"L{n:03d}")] = ("Kid", f"L{n}", "", f"l{n}", "03")
    for n in range(SMALL):
        snap.students[("SCH2", f"O{n:03d}")] = ("Kid", f"O{n}", "", f"o{n}", "04")
    snap.enrollments.add(("SCH1", "C1", "L000"))
    snap.enrollments.add(("SCH2", "C2", "O000"))
    return snap


def without_oak_hill_students() -> Snapshot:
    """Every Oak Hill student but the enrolled one gone: 5 of 106 students (4.7 %)."""
    snap = copy.deepcopy(two_schools())
    for key in [k for k in snap.students if k[0] == "SCH2" and k[1] != "O000"]:
        del snap.students[key]
    return snap


def setup(db: Database, settings: Settings, tmp_path: Path) -> Pipeline:
    add_tenant(db, "acme")
    pipeline = pipeline_for(db, settings)
    first = run_import(pipeline, "acme", two_schools().write(tmp_path / "first"))
    assert first.state is ImportState.IMPORTED
    return pipeline


def test_a_school_losing_its_students_pauses_and_check_your_data_names_it(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    pipeline = setup(db, settings, tmp_path)

    report = run_import(pipeline, "acme", without_oak_hill_students().write(tmp_path / "2"))

    assert report.state is ImportState.PAUSED
    assert [t.describe() for t in report.tripped] == [
        "would deactivate 5 of 6 active students at Oak Hill (school SCH2) (83.3%, limit 10%)"
    ]
    assert len(roster(db, "acme")["students"]) == BIG + SMALL  # nothing applied
    text, html = last_email(db, report.import_id)
    assert "- students at Oak Hill (school SCH2): would deactivate 5 of 6" in text
    assert "although the district as a whole stays under 10%" in text
    assert "Oak Hill (school SCH2)" in html


def test_an_approval_covers_the_school_and_applies(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    pipeline = setup(db, settings, tmp_path)
    paused = run_import(pipeline, "acme", without_oak_hill_students().write(tmp_path / "2"))

    report = pipeline.approve(paused.import_id, by="registrar@acme")

    assert report.state is ImportState.IMPORTED
    assert len(roster(db, "acme")["students"]) == BIG + 1


def test_with_per_school_off_only_the_district_counts(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    pipeline = setup(db, settings, tmp_path)
    set_tenant(db, "acme", per_school=False)

    report = run_import(pipeline, "acme", without_oak_hill_students().write(tmp_path / "2"))

    assert report.state is ImportState.IMPORTED
    assert report.entities["students"].deactivated == SMALL - 1


def test_under_the_floor_a_school_never_trips(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """4 of 6 Oak Hill students (67 %) are fewer than the floor of 5 rows."""
    pipeline = setup(db, settings, tmp_path)
    snap = copy.deepcopy(two_schools())
    for n in range(1, 5):
        del snap.students[("SCH2", f"O{n:03d}")]

    report = run_import(pipeline, "acme", snap.write(tmp_path / "2"))

    assert report.state is ImportState.IMPORTED
    assert report.entities["students"].deactivated == 4
