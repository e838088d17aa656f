"""Issue 14, undo an import: a district approved a bad upload by mistake, and takes it back.

Each test imports real snapshots through the pipeline, undoes one as `rosterdrop imports undo`
does, and compares every record of the roster (every field, extra columns, active state and
link) with what it was before.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from daemon import undo
from daemon.config import Settings
from daemon.errors import Conflict
from daemon.pipeline import Pipeline
from daemon.roster.outcome import ImportReport, ImportState
from daemon.store import imports
from daemon.store.database import Database
from daemon.store.tables import import_changes
from tests.support.clever import Snapshot
from tests.support.roster import NEVER_PAUSE, add_tenant, pipeline_for, run_import
from tests.support.undoing import State, add_extra_column, assert_restored, run_undo, state


def district_a() -> Snapshot:
    snap = Snapshot(schools={"SCH1": "Lincoln", "SCH2": "Adams"})
    snap.teachers[("SCH1", "T1")] = ("Ada", "Lovelace", "ada@d.org")
    snap.teachers[("SCH1", "T2")] = ("Alan", "Turing", "alan@d.org")
    snap.teachers[("SCH2", "T3")] = ("Grace", "Hopper", "grace@d.org")
    snap.sections[("SCH1", "C1")] = (("T1", "T2"), "Math", "2026-08-15", "2027-06-10")
    snap.sections[("SCH2", "C2")] = (("T3",), "Art", "", "")
    for n in range(1, 6):
        snap.students[("SCH1", f"S{n}")] = ("Kid", f"No{n}", "", f"s{n}", "03")
    snap.students[("SCH2", "S9")] = ("Zoë", "Peña", "zoe@s.org", "", "KG")
    snap.enrollments |= {("SCH1", "C1", "S1"), ("SCH1", "C1", "S2"), ("SCH2", "C2", "S9")}
    return snap


def district_b() -> Snapshot:
    """A bad upload: a school gone, names and grades changed, teachers swapped, a newcomer."""
    snap = district_a()
    del snap.schools["SCH2"]
    del snap.teachers[("SCH2", "T3")]
    del snap.sections[("SCH2", "C2")]
    del snap.students[("SCH2", "S9")]
    snap.enrollments.discard(("SCH2", "C2", "S9"))
    snap.students[("SCH1", "S1")] = ("Kidd", "Changed", "s1@s.org", "s1", "04")
    snap.students[("SCH1", "S6")] = ("New", "Pupil", "", "s6", "03")
    snap.sections[("SCH1", "C1")] = (("T2",), "Math II", "", "2027-06-30")
    snap.enrollments |= {("SCH1", "C1", "S6")}
    snap.enrollments.discard(("SCH1", "C1", "S2"))
    return snap


def _upload(snap: Snapshot, folder: Path, state_ids: dict[str, str]) -> Path:
    snap.write(folder)
    add_extra_column(folder, "students.csv", "state_id", state_ids)
    return folder


def _a_then_b(
    db: Database, pipeline: Pipeline, tenant: str, tmp_path: Path
) -> tuple[ImportReport, State, ImportReport, State]:
    """District A imported, then the bad upload B: each report, and the roster after it."""
    a = run_import(pipeline, tenant, _upload(district_a(), tmp_path / "a", {"S1": "X1"}))
    after_a = state(db, tenant)
    b = run_import(pipeline, tenant, _upload(district_b(), tmp_path / "b", {"S1": "X2"}))
    assert b.state is ImportState.IMPORTED, b.problems
    return a, after_a, b, state(db, tenant)


@pytest.fixture
def tenant(db: Database) -> str:
    add_tenant(db, "lincoln", NEVER_PAUSE)
    return "lincoln"


def test_undo_restores_every_value_active_state_link_and_extra(
    db: Database, settings: Settings, tenant: str, tmp_path: Path
) -> None:
    pipeline = pipeline_for(db, settings)
    a, after_a, b, after_b = _a_then_b(db, pipeline, tenant, tmp_path)
    assert after_b != after_a

    undone = run_undo(pipeline, b.import_id)

    assert undone.state is ImportState.IMPORTED
    assert undone.source == "undo"
    assert_restored(state(db, tenant), after_a)
    students = undone.entities["students"]
    assert (students.updated, students.reactivated, students.deactivated) == (1, 1, 1)
    assert any(
        p.code == "undo" and f"undid import #{b.import_id}:" in p.message for p in undone.problems
    )
    with db.read() as conn:  # in the history, with what it undid
        assert imports.get(conn, undone.import_id).undoes == b.import_id
    assert a.import_id < b.import_id < undone.import_id


def test_undo_of_an_undo_is_a_redo(
    db: Database, settings: Settings, tenant: str, tmp_path: Path
) -> None:
    pipeline = pipeline_for(db, settings)
    _, _, b, after_b = _a_then_b(db, pipeline, tenant, tmp_path)
    first = run_undo(pipeline, b.import_id)

    redo = run_undo(pipeline, first.import_id)

    assert redo.state is ImportState.IMPORTED
    assert state(db, tenant) == after_b


def test_an_older_import_is_undone_only_by_undoing_back_to_it(
    db: Database, settings: Settings, tenant: str, tmp_path: Path
) -> None:
    pipeline = pipeline_for(db, settings)
    _, after_a, b, _ = _a_then_b(db, pipeline, tenant, tmp_path)
    c_snap = district_b()
    c_snap.students[("SCH1", "S1")] = ("Third", "Version", "", "s1", "05")
    c = run_import(pipeline, tenant, _upload(c_snap, tmp_path / "c", {"S1": "X3"}))
    after_c = state(db, tenant)

    with pytest.raises(Conflict, match=rf"not the newest applied import \(#{c.import_id} is\)"):
        undo.ask(pipeline, b.import_id, back_to=False)
    assert state(db, tenant) == after_c  # refused: nothing changed, nothing recorded
    shown = undo.plan_undo(db, b.import_id)
    assert [r.id for r in shown.undone] == [c.import_id, b.import_id]
    assert shown.plan.entities["students"].updated == 1  # S1, three versions back to one
    assert state(db, tenant) == after_c  # the plan was only shown

    report = run_undo(pipeline, b.import_id, back_to=True)

    assert report.state is ImportState.IMPORTED
    assert_restored(state(db, tenant), after_a)
    assert report.entities["students"].as_dict() == shown.plan.entities["students"].as_dict()


def test_undoing_the_first_import_deactivates_everything_it_added(
    db: Database, settings: Settings, tenant: str, tmp_path: Path
) -> None:
    pipeline = pipeline_for(db, settings)
    first = run_import(pipeline, tenant, _upload(district_a(), tmp_path / "a", {}))
    added = state(db, tenant)

    report = run_undo(pipeline, first.import_id)

    assert report.state is ImportState.IMPORTED
    now = state(db, tenant)
    assert {n: rows.keys() for n, rows in now.items()} == {
        n: rows.keys() for n, rows in added.items()
    }
    assert not [key for rows in now.values() for key, v in rows.items() if v[-1]]
    redo = run_undo(pipeline, report.import_id)
    assert redo.state is ImportState.IMPORTED
    assert state(db, tenant) == added


def test_only_an_applied_import_with_its_change_log_can_be_undone(
    db: Database, settings: Settings, tenant: str, tmp_path: Path
) -> None:
    pipeline = pipeline_for(db, settings)
    a = run_import(pipeline, tenant, _upload(district_a(), tmp_path / "a", {}))
    identical = run_import(pipeline, tenant, tmp_path / "a")  # applied, changing nothing
    assert identical.state is ImportState.IMPORTED
    (tmp_path / "empty").mkdir()
    failed = run_import(pipeline, tenant, tmp_path / "empty")
    assert failed.state is ImportState.FAILED
    with pytest.raises(Conflict, match="failed: only an applied import can be undone"):
        undo.ask(pipeline, failed.import_id, back_to=False)
    # Retention removed the files of the first import, and its change log with them.
    pipeline.expire(retention_days=-1)
    with db.read() as conn:
        assert not conn.execute(
            sa.select(import_changes).where(import_changes.c.import_id == a.import_id)
        ).first()
    with pytest.raises(
        Conflict, match=rf"change log of imports #\d+ and #{a.import_id} has expired"
    ):
        undo.ask(pipeline, a.import_id, back_to=True)


def test_an_undo_is_refused_when_the_roster_moved_since_it_was_asked_for(
    db: Database, settings: Settings, tenant: str, tmp_path: Path
) -> None:
    pipeline = pipeline_for(db, settings)
    _, _, b, after_b = _a_then_b(db, pipeline, tenant, tmp_path)
    with pytest.raises(Conflict, match=rf"import #{b.import_id} was applied since you were shown"):
        undo.ask(pipeline, b.import_id, back_to=False, newest=b.import_id - 1)  # a stale page
    asked = undo.ask(pipeline, b.import_id, back_to=False, newest=b.import_id)
    c_snap = district_b()
    c_snap.schools["SCH1"] = "Lincoln Elementary"
    c = run_import(pipeline, tenant, _upload(c_snap, tmp_path / "c", {"S1": "X2"}))
    after_c = state(db, tenant)
    assert after_c != after_b

    report = pipeline.run(asked)  # the roster moved under it: nothing is undone

    assert report.state is ImportState.FAILED
    assert report.fatal_reason is not None
    assert f"Import #{c.import_id} was applied after this undo was asked for" in (
        report.fatal_reason
    )
    assert state(db, tenant) == after_c
