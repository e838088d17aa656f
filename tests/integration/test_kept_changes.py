"""What the change browser keeps of an import, through the real pipeline (SQLite and
PostgreSQL): a paused plan record by record, replaced by what the apply did after an approval
(also when the roster moved in between), held rows, and a first import's adds read from the
roster instead of copied."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from daemon.config import Settings
from daemon.roster.entities import BY_NAME
from daemon.roster.outcome import ImportState
from daemon.roster.tenant import TenantSettings
from daemon.store.database import Database
from daemon.store.kept_changes import ChangedRecord, Listing, Seek
from daemon.store.tables import import_changes, roster_tables
from tests.support.clever import write_upload
from tests.support.roster import add_tenant, pipeline_for, roster, run_import


def _district() -> dict[str, list[list[str]]]:
    return {
        "schools.csv": [["SCH1", "Lincoln"]],
        "teachers.csv": [["SCH1", "T1", "Ada", "Lovelace", "ada@d.org"]],
        "students.csv": [
            ["SCH1", "S1", "Ann", "Lee", "", "ann", "03"],
            ["SCH1", "S2", "Bob", "Kim", "", "bob", "04"],
            ["SCH1", "S3", "Cy", "Wu", "", "cy", "05"],
        ],
        "sections.csv": [["SCH1", "C1", "T1", "Math", "", ""]],
        "enrollments.csv": [["SCH1", "C1", "S1"], ["SCH1", "C1", "S2"], ["SCH1", "C1", "S3"]],
    }


def _next_day() -> dict[str, list[list[str]]]:
    """S2 gone (with its enrollment), S1's grade and name changed, S4 new, S3's row broken
    (held: kept as it is), S5's row broken and new (held, not in the roster)."""
    files = _district()
    files["students.csv"] = [
        ["SCH1", "S1", "Ann", "Lee-Smith", "", "ann", "04"],
        ["SCH1", "S3", "", "Wu", "", "cy", "05"],
        ["SCH1", "S4", "Dee", '=HYPERLINK("x")', "", "dee", "05"],
        ["SCH1", "S5", "", "Nu", "", "eve", "05"],
    ]
    files["enrollments.csv"] = [["SCH1", "C1", "S1"], ["SCH1", "C1", "S3"], ["SCH1", "C1", "S4"]]
    return files


def _listed(
    db: Database, import_id: int, entity: str, kind: str, q: str = ""
) -> list[ChangedRecord]:
    with db.read() as conn:
        tenant_id, state = conn.execute(
            sa.text("SELECT tenant_id, state FROM imports WHERE id = :id"), {"id": import_id}
        ).one()
        listing = Listing(
            conn, tenant_id=tenant_id, import_id=import_id, entity=BY_NAME[entity], kind=kind,
            applied=state in ("imported", "imported_with_errors"),
        )  # fmt: skip
        return listing.page(q, 100, Seek())


def _kept_rows(db: Database, import_id: int) -> int:
    with db.read() as conn:
        query = sa.select(sa.func.count()).where(import_changes.c.import_id == import_id)
        return int(conn.execute(query).scalar_one())


def test_a_first_import_keeps_its_adds_in_the_roster_only(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    add_tenant(db, "acme")
    first = run_import(pipeline_for(db, settings), "acme", write_upload(tmp_path, _district()))
    assert first.state is ImportState.IMPORTED
    assert _kept_rows(db, first.import_id) == 0  # nothing copied: the roster has them
    students = _listed(db, first.import_id, "students", "add")
    assert [(r.key, r.label) for r in students] == [
        (("SCH1", "S1"), "Ann Lee"),
        (("SCH1", "S2"), "Bob Kim"),
        (("SCH1", "S3"), "Cy Wu"),
    ]
    assert [r.key for r in _listed(db, first.import_id, "students", "add", q="bob")] == [
        ("SCH1", "S2")
    ]
    assert len(_listed(db, first.import_id, "enrollments", "add")) == 3
    assert _listed(db, first.import_id, "enrollments", "add")[0].label == "Ann Lee"


def test_a_paused_import_keeps_its_plan_and_the_roster_stays_as_it_was(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    add_tenant(db, "acme")
    pipeline = pipeline_for(db, settings)
    run_import(pipeline, "acme", write_upload(tmp_path / "day1", _district()))
    before = roster(db, "acme")
    paused = run_import(pipeline, "acme", write_upload(tmp_path / "day2", _next_day()))

    assert paused.state is ImportState.PAUSED
    assert roster(db, "acme") == before
    gone = _listed(db, paused.import_id, "students", "deactivate")
    assert [(r.key, r.label) for r in gone] == [(("SCH1", "S2"), "Bob Kim")]
    (updated,) = _listed(db, paused.import_id, "students", "update")
    assert updated.key == ("SCH1", "S1")
    assert updated.fields == {"last_name": ("Lee", "Lee-Smith"), "grade": ("03", "04")}
    (added,) = _listed(db, paused.import_id, "students", "add")
    assert added.label == 'Dee =HYPERLINK("x")'
    held = _listed(db, paused.import_id, "students", "held")
    assert [(r.key[1], r.label, r.line, r.known) for r in held] == [
        ("S3", "Cy Wu", 3, True),  # kept as it is, under the roster's name
        ("S5", "", 5, False),  # not imported at all
    ]
    enrollments = _listed(db, paused.import_id, "enrollments", "deactivate")
    assert [(r.key, r.label) for r in enrollments] == [(("SCH1", "C1", "S2"), "Bob Kim")]


def test_an_approved_import_keeps_what_it_did_against_the_roster_as_it_is_then(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    tenant = add_tenant(db, "acme", TenantSettings(max_row_errors=0))
    pipeline = pipeline_for(db, settings)
    run_import(pipeline, "acme", write_upload(tmp_path / "day1", _district()))
    paused = run_import(pipeline, "acme", write_upload(tmp_path / "day2", _next_day()))
    assert paused.state is ImportState.PAUSED
    students = roster_tables["students"]
    with db.write() as conn:  # the roster moves while the import waits: S1 renamed, S2 gone
        conn.execute(
            students.update()
            .where(students.c.tenant_id == tenant.id, students.c.student_id == "S1")
            .values(last_name="Lee-Jones")
        )
        conn.execute(
            students.update()
            .where(students.c.tenant_id == tenant.id, students.c.student_id == "S2")
            .values(active=False)
        )

    done = pipeline.approve(paused.import_id, "registrar")

    assert done.state is ImportState.IMPORTED_WITH_ERRORS
    (updated,) = _listed(db, paused.import_id, "students", "update")
    assert updated.fields == {"last_name": ("Lee-Jones", "Lee-Smith"), "grade": ("03", "04")}
    assert _listed(db, paused.import_id, "students", "deactivate") == []  # already inactive
    assert [r.key[1] for r in _listed(db, paused.import_id, "students", "add")] == ["S4"]
    assert [r.key[1] for r in _listed(db, paused.import_id, "students", "held")] == ["S3", "S5"]


def test_the_kept_changes_expire_with_the_archived_files(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    add_tenant(db, "acme")
    pipeline = pipeline_for(db, settings)
    run_import(pipeline, "acme", write_upload(tmp_path / "day1", _district()))
    paused = run_import(pipeline, "acme", write_upload(tmp_path / "day2", _next_day()))
    # 1 update, 1 add, 1 deactivation, 2 held students; 1 added, 1 gone, 1 held enrollment
    assert _kept_rows(db, paused.import_id) == 8
    assert pipeline.expire(-1) == 1  # the first import's; a paused one is not archived yet
    assert _kept_rows(db, paused.import_id) == 8

    assert pipeline.reject(paused.import_id, "registrar").state is ImportState.REJECTED
    assert _kept_rows(db, paused.import_id) == 8  # what was refused can still be read
    assert pipeline.expire(-1) == 1  # past the retention: the files and the list go
    assert _kept_rows(db, paused.import_id) == 0
