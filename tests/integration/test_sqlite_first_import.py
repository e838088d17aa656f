"""On SQLite the first district's first import writes each roster table with the table's
indexes dropped, and builds them again after the insert, in the import's transaction. The
indexes come back as the migrations made them; an import killed while they are away leaves
them as they were; a second district's first import keeps them (it would sort the first's
rows again)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench.district import generate
from daemon.config import Settings
from daemon.roster.entities import ENTITIES
from daemon.roster.outcome import ImportState
from daemon.store import tenants
from daemon.store.database import Database
from daemon.store.roster import active_counts
from daemon.testpoint import STOP_AT
from tests.support.roster import (
    NEVER_PAUSE,
    ROSTERDROP,
    add_tenant,
    pipeline_for,
    rosterdrop_env,
    run_import,
)

ROSTER = [e.name for e in ENTITIES]


@pytest.fixture
def database_url(tmp_path: Path, sqlite_template: Path) -> str:
    """These tests are about SQLite's tables only."""
    path = tmp_path / "rosterdrop.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


def _indexes(db: Database) -> list[tuple[str, str, str]]:
    """The roster tables' indexes as the schema holds them: (table, name, statement)."""
    with db.read() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT tbl_name, name, sql FROM sqlite_master WHERE type = 'index'"
                " AND sql IS NOT NULL ORDER BY tbl_name, name"
            )
        ).all()
    return [tuple(row) for row in rows if row[0] in ROSTER]  # type: ignore[misc]


def _intact(db: Database) -> str:
    """SQLite's own check that every index holds exactly the table's rows."""
    with db.read() as conn:
        return str(conn.exec_driver_sql("PRAGMA integrity_check").scalar_one())


def _traced(db: Database) -> list[str]:
    """The statements the database's connections run from now on."""
    statements: list[str] = []
    sa.event.listen(db.engine, "connect", lambda raw, _: raw.set_trace_callback(statements.append))
    db.engine.dispose()  # the pooled connections were opened without the trace
    return statements


def _drops(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith("DROP INDEX")]


def test_the_first_districts_first_import_builds_every_index_again_as_it_was(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    generate(tmp_path / "acme", 300)
    add_tenant(db, "acme", NEVER_PAUSE)
    before = _indexes(db)
    assert {table for table, _, _ in before} == set(ROSTER)  # every roster table has some
    statements = _traced(db)

    report = run_import(pipeline_for(db, settings), "acme", tmp_path / "acme")

    assert report.state is ImportState.IMPORTED
    assert sorted(_drops(statements)) == sorted(f"DROP INDEX {name}" for _, name, _ in before)
    assert _indexes(db) == before
    assert _intact(db) == "ok"
    with db.read() as conn:
        acme = tenants.get(conn, "acme").id
        assert active_counts(conn, acme)["students"] == 300
        # an index answers for the rows inserted while it was away
        by_student = conn.exec_driver_sql(
            "SELECT count(*) FROM enrollments INDEXED BY ix_enrollments_tenant_id_student_id"
            " WHERE tenant_id = ? AND student_id > ''",
            (acme,),
        ).scalar_one()
        assert by_student == active_counts(conn, acme)["enrollments"] > 0


def test_a_second_districts_first_import_keeps_the_indexes(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    generate(tmp_path / "acme", 200)
    generate(tmp_path / "bravo", 100)
    add_tenant(db, "acme", NEVER_PAUSE)
    add_tenant(db, "bravo", NEVER_PAUSE)
    pipeline = pipeline_for(db, settings)
    assert run_import(pipeline, "acme", tmp_path / "acme").state is ImportState.IMPORTED
    statements = _traced(db)

    assert run_import(pipeline, "bravo", tmp_path / "bravo").state is ImportState.IMPORTED

    assert _drops(statements) == []
    assert _intact(db) == "ok"
    with db.read() as conn:
        assert active_counts(conn, tenants.get(conn, "bravo").id)["students"] == 100


def test_a_first_import_killed_while_its_indexes_are_away_leaves_every_index(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    generate(tmp_path / "acme", 300)
    add_tenant(db, "acme", NEVER_PAUSE)
    before = _indexes(db)
    stops = tmp_path / "stops"
    stops.mkdir()
    point = "indexes-dropped"  # the first table's, before its insert
    importer = subprocess.Popen(
        [str(ROSTERDROP), "import", str(tmp_path / "acme"), "--tenant", "acme"],
        env={**rosterdrop_env(settings), STOP_AT: f"{point}:{stops}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not (stops / f"{point}.reached").exists():
            assert importer.poll() is None, "the held import ended"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(importer.pid, signal.SIGKILL)
    finally:
        if importer.poll() is None:
            importer.kill()
        importer.wait(30)

    assert _indexes(db) == before
    assert _intact(db) == "ok"
    with db.read() as conn:
        acme = tenants.get(conn, "acme").id
        assert active_counts(conn, acme)["students"] == 0
    pipeline = pipeline_for(db, settings)
    assert pipeline.recover() == [("acme", 1)]
    assert pipeline.run(1).state is ImportState.IMPORTED
    assert _indexes(db) == before
    assert _intact(db) == "ok"
