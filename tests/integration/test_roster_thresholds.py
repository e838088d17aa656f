"""Thresholds, approve, reject and supersede through the real pipeline and database."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from daemon.clever.files import find_files
from daemon.config import Settings
from daemon.errors import Conflict
from daemon.pipeline import Pipeline
from daemon.roster.outcome import ImportState
from daemon.store import imports, tenants
from daemon.store.database import Database
from tests.support import drop
from tests.support.clever import Snapshot
from tests.support.roster import (
    add_tenant,
    counts,
    pipeline_for,
    roster,
    run_import,
    set_tenant,
    tables,
)


def district(students: int) -> Snapshot:
    """One school, two teachers, one section; students S01… of whom only S01 is enrolled (so
    removing others deactivates students and nothing else)."""
    snap = Snapshot(schools={"SCH1": "Lincoln"})
    snap.teachers[("SCH1", "T1")] = ("Ada", "Lovelace", "ada@d.org")
    snap.teachers[("SCH1", "T2")] = ("Alan", "Turing", "alan@d.org")
    snap.sections[("SCH1", "C1")] = (("T1", "T2"), "Math", "2026-08-15", "2027-06-10")
    for n in range(1, students + 1):
        snap.students[("SCH1", f"S{n:02d}")] = ("Kid", f"No{n}", "", f"s{n}", "03")
    snap.enrollments.add(("SCH1", "C1", "S01"))
    return snap


def without(snap: Snapshot, students: int) -> Snapshot:
    """The same district with its last `students` students gone."""
    out = copy.deepcopy(snap)
    for key in list(out.students)[-students:]:
        del out.students[key]
    return out


def renamed(snap: Snapshot, students: int) -> Snapshot:
    """The same district with the first names of its last `students` students changed."""
    out = copy.deepcopy(snap)
    for key in list(out.students)[-students:]:
        out.students[key] = ("Renamed", *out.students[key][1:])
    return out


@pytest.fixture
def pipeline(db: Database, settings: Settings) -> Pipeline:
    add_tenant(db, "acme")
    return pipeline_for(db, settings)


Upload = Callable[[Snapshot], Path]
# The counts come from SQL (tested on both databases elsewhere); the rules are Python.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def upload(tmp_path: Path) -> Upload:
    """Write a snapshot into a new folder and return the folder."""
    folders = iter(range(1000))

    def write(snap: Snapshot) -> Path:
        return snap.write(tmp_path / f"upload{next(folders)}")

    return write


def imported(pipeline: Pipeline, folder: Path) -> None:
    report = run_import(pipeline, "acme", folder)
    assert report.state is ImportState.IMPORTED, (report.tripped, report.problems)


@sqlite_only
@pytest.mark.parametrize(
    ("active", "removed", "state"),
    [
        (50, 5, ImportState.IMPORTED),  # 10 %: at the limit
        (50, 6, ImportState.PAUSED),  # 12 %
        (20, 4, ImportState.IMPORTED),  # 20 %, but 4 rows are under the floor of 5
        (20, 5, ImportState.PAUSED),  # 25 %, 5 rows
    ],
)
def test_deactivations_pause_above_ten_percent_from_five_rows(
    pipeline: Pipeline, db: Database, upload: Upload, active: int, removed: int, state: ImportState
) -> None:
    imported(pipeline, upload(district(active)))
    before = tables(db, "acme")

    report = run_import(pipeline, "acme", upload(without(district(active), removed)))

    assert report.state is state
    assert counts(report)["students"]["deactivated"] == removed
    if state is ImportState.PAUSED:
        assert [t.describe() for t in report.tripped] == [
            f"would deactivate {removed} of {active} active students"
            f" ({100 * removed / active:.1f}%, limit 10%)"
        ]
        assert tables(db, "acme") == before  # a paused import applies nothing
    else:
        assert len(roster(db, "acme")["students"]) == active - removed


@sqlite_only
@pytest.mark.parametrize(
    ("changed", "state"), [(15, ImportState.IMPORTED), (16, ImportState.PAUSED)]
)
def test_updates_pause_above_seventy_five_percent(
    pipeline: Pipeline, db: Database, upload: Upload, changed: int, state: ImportState
) -> None:
    imported(pipeline, upload(district(20)))

    report = run_import(pipeline, "acme", upload(renamed(district(20), changed)))

    assert report.state is state
    assert counts(report)["students"]["updated"] == changed
    assert report.entities["students"].field_changes == {"first_name": changed}
    assert [t.rule for t in report.tripped] == ([] if state is ImportState.IMPORTED else ["update"])


@sqlite_only
def test_a_first_import_is_never_paused_for_its_size(pipeline: Pipeline, upload: Upload) -> None:
    report = run_import(pipeline, "acme", upload(district(60)))

    assert report.state is ImportState.IMPORTED
    assert counts(report)["students"]["added"] == 60


def _without_first_names(folder: Path, lines: int) -> Path:
    """Blank the first name (a required value) of the last `lines` students (none enrolled)."""
    path = folder / "students.csv"
    rows = path.read_text().splitlines()
    for i in range(len(rows) - lines, len(rows)):
        cells = rows[i].split(",")
        rows[i] = ",".join([*cells[:2], "", *cells[3:]])
    path.write_text("\r\n".join(rows) + "\r\n")
    return folder


def test_any_row_error_pauses_by_default(pipeline: Pipeline, db: Database, upload: Upload) -> None:
    report = run_import(pipeline, "acme", _without_first_names(upload(district(10)), 1))

    assert report.state is ImportState.PAUSED
    assert [t.describe() for t in report.tripped] == [
        "1 row with errors of 15 read (6.7%; this district allows 0)"
    ]
    assert roster(db, "acme")["students"] == []


@pytest.mark.parametrize(
    ("errors", "state"), [(2, ImportState.IMPORTED_WITH_ERRORS), (3, ImportState.PAUSED)]
)
def test_a_tenant_may_allow_some_row_errors(
    pipeline: Pipeline, db: Database, upload: Upload, errors: int, state: ImportState
) -> None:
    set_tenant(db, "acme", max_row_errors=2)
    imported(pipeline, upload(district(10)))

    report = run_import(pipeline, "acme", _without_first_names(upload(district(10)), errors))

    assert report.state is state
    assert counts(report)["students"]["held"] == errors
    assert report.problem_totals["error"] == errors


def _pause(pipeline: Pipeline, upload: Upload) -> int:
    imported(pipeline, upload(district(50)))
    paused = run_import(pipeline, "acme", upload(without(district(50), 6)))
    assert paused.state is ImportState.PAUSED
    return paused.import_id


def test_approve_applies_a_paused_import(pipeline: Pipeline, db: Database, upload: Upload) -> None:
    import_id = _pause(pipeline, upload)

    report = pipeline.approve(import_id, by="admin@acme")

    assert report.state is ImportState.IMPORTED
    assert report.decided_by == "admin@acme"
    assert counts(report)["students"]["deactivated"] == 6
    assert roster(db, "acme") == without(district(50), 6).roster_json()


def test_reject_applies_nothing(pipeline: Pipeline, db: Database, upload: Upload) -> None:
    import_id = _pause(pipeline, upload)
    before = tables(db, "acme")

    report = pipeline.reject(import_id, by="admin@acme")

    assert report.state is ImportState.REJECTED
    assert tables(db, "acme") == before
    # The district hears how it ended: Check Your Data at the pause, Import Results now.
    assert _emails_about(db, import_id) == ["check_your_data", "import_results"]
    with pytest.raises(Conflict, match="is rejected: only a paused import"):
        pipeline.approve(import_id, by="admin@acme")


def test_a_newer_upload_supersedes_a_paused_one(
    pipeline: Pipeline, db: Database, upload: Upload
) -> None:
    older = _pause(pipeline, upload)

    newer = run_import(pipeline, "acme", upload(without(district(50), 2)))

    assert newer.state is ImportState.IMPORTED
    superseded = pipeline.report(older)
    assert superseded.state is ImportState.SUPERSEDED
    assert superseded.superseded_by == newer.import_id
    with pytest.raises(Conflict, match="is superseded"):
        pipeline.approve(older, by="admin@acme")
    assert roster(db, "acme") == without(district(50), 2).roster_json()
    assert _emails_about(db, older) == ["check_your_data", "import_results"]
    assert _emails_about(db, newer.import_id) == ["import_results"]


def test_a_superseded_import_that_cannot_be_archived_leaves_the_new_import_alone(
    pipeline: Pipeline, db: Database, upload: Upload, settings: Settings
) -> None:
    """Archiving the older import is its own business: where its archive folder cannot be
    made, the newer import imports all the same, and a later start archives the older one."""
    older = _pause(pipeline, upload)
    obstacle = settings.paths.archive / "acme" / str(older)
    obstacle.parent.mkdir(parents=True, exist_ok=True)
    obstacle.write_text("not a folder")  # the archive cannot replace it

    with capture_logs() as logs:
        newer = run_import(pipeline, "acme", upload(without(district(50), 2)))

    assert newer.state is ImportState.IMPORTED
    assert pipeline.report(older).state is ImportState.SUPERSEDED
    [warning] = [e for e in logs if e["event"] == "superseded import not archived"]
    assert warning["import_id"] == older
    assert _files_dir(db, older).parent.parent == settings.paths.spool, "still in the spool"

    obstacle.unlink()
    pipeline.recover()  # the next start
    assert settings.paths.archive in _files_dir(db, older).parents


def _files_dir(db: Database, import_id: int) -> Path:
    with db.read() as conn:
        return Path(imports.get(conn, import_id).files_dir or "")


def _emails_about(db: Database, import_id: int) -> list[str]:
    return [e["kind"] for e in drop.emails(db) if e["import_id"] == import_id]


def test_approval_re_plans_and_pauses_again_when_the_roster_moved_further(
    pipeline: Pipeline, db: Database, upload: Upload
) -> None:
    """An older upload applied after a newer one paused: the paused plan, re-checked, would
    now deactivate more than the person approved."""
    imported(pipeline, upload(district(50)))
    with db.read() as conn:
        acme = tenants.get(conn, "acme")
    grown = district(60)  # ten more students
    older = pipeline.receive(acme, find_files(upload(grown)), source="cli", move=False)
    newer = pipeline.receive(
        acme, find_files(upload(without(district(50), 6))), source="cli", move=False
    )
    assert pipeline.run(newer).state is ImportState.PAUSED  # 6 of 50
    assert pipeline.run(older).state is ImportState.IMPORTED  # older: supersedes nothing

    again = pipeline.approve(newer, by="admin@acme")

    assert again.state is ImportState.PAUSED
    assert [t.describe() for t in again.tripped] == [
        "would deactivate 16 of 60 active students (26.7%, limit 10%)"
    ]
    assert roster(db, "acme") == grown.roster_json()

    final = pipeline.approve(newer, by="admin@acme")

    assert final.state is ImportState.IMPORTED
    assert roster(db, "acme") == without(district(50), 6).roster_json()


@sqlite_only
def test_an_import_paused_and_approved_many_times_still_imports(
    pipeline: Pipeline, db: Database, upload: Upload
) -> None:
    """Pauses are not crashes: they must not use up the attempts a restart is allowed."""
    imported(pipeline, upload(district(50)))
    with db.read() as conn:
        acme = tenants.get(conn, "acme")
    olders = [
        pipeline.receive(acme, find_files(upload(district(n))), source="cli", move=False)
        for n in (60, 70, 80)
    ]
    newer = pipeline.receive(
        acme, find_files(upload(without(district(50), 6))), source="cli", move=False
    )
    assert pipeline.run(newer).state is ImportState.PAUSED
    for older in olders:  # the roster grows; each approval finds more to deactivate
        assert pipeline.run(older).state is ImportState.IMPORTED
        assert pipeline.approve(newer, by="admin@acme").state is ImportState.PAUSED

    final = pipeline.approve(newer, by="admin@acme")

    assert final.state is ImportState.IMPORTED, final.problems
    assert roster(db, "acme") == without(district(50), 6).roster_json()


def _with_state_ids(folder: Path) -> Path:
    """Add a `state_id` column to students.csv, as a district extending its export would."""
    path = folder / "students.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [lines[0] + ",state_id"] + [f"{line},ST{n:04d}" for n, line in enumerate(lines[1:])]
    path.write_text("\r\n".join(rows) + "\r\n", encoding="utf-8")
    return folder


@sqlite_only
def test_a_new_extra_column_alone_does_not_pause(
    pipeline: Pipeline, db: Database, upload: Upload
) -> None:
    imported(pipeline, upload(district(20)))

    report = run_import(pipeline, "acme", _with_state_ids(upload(district(20))))

    assert report.state is ImportState.IMPORTED, report.tripped
    students = report.entities["students"]
    assert (students.updated, students.extra_only) == (20, 20)
    assert roster(db, "acme")["students"][0]["extra"] == {"state_id": "ST0000"}


@sqlite_only
def test_a_new_extra_column_does_not_hide_real_changes(pipeline: Pipeline, upload: Upload) -> None:
    imported(pipeline, upload(district(20)))

    report = run_import(pipeline, "acme", _with_state_ids(upload(renamed(district(20), 16))))

    assert report.state is ImportState.PAUSED
    assert [(t.rule, t.count) for t in report.tripped] == [("update", 16)]


@sqlite_only
def test_bringing_back_many_deactivated_records_pauses(
    pipeline: Pipeline, db: Database, upload: Upload
) -> None:
    """An old snapshot sent again would reactivate what later uploads removed."""
    imported(pipeline, upload(district(20)))
    set_tenant(db, "acme", max_deactivate_percent=100)
    imported(pipeline, upload(without(district(20), 16)))
    set_tenant(db, "acme", max_deactivate_percent=10)

    report = run_import(pipeline, "acme", upload(district(20)))

    assert report.state is ImportState.PAUSED
    assert counts(report)["students"]["reactivated"] == 16
    assert [t.describe() for t in report.tripped] == [
        "would change 16 of 20 active students (80.0%, limit 75%)"
    ]
