"""On PostgreSQL each district's roster is a partition of its own (migration 0014): its first
import builds it whole and attaches it in the import's transaction. What downstream readers
see stays the same tables, rows and indexes; a rolled-back import leaves no partition; the
migration keeps every row and index, both ways."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench.district import generate
from daemon.config import Settings
from daemon.errors import StoreError
from daemon.roster.entities import ENTITIES
from daemon.roster.outcome import ImportState
from daemon.store import tenants
from daemon.store.database import Database
from daemon.store.partitions import STATISTICS_TARGET
from daemon.store.roster import active_counts
from daemon.testpoint import STOP_AT
from tests.support import postgres
from tests.support.roster import (
    NEVER_PAUSE,
    ROSTERDROP,
    add_tenant,
    migrate,
    pipeline_for,
    rosterdrop_env,
    run_import,
    tables,
)

pytestmark = pytest.mark.postgres
ROSTER = [e.name for e in ENTITIES]


@pytest.fixture
def database_url(postgres_server: str) -> str:
    """These tests are about PostgreSQL's tables only."""
    return postgres.create_database(postgres_server, f"partitions_{os.getpid()}_{time.time_ns()}")


def _partitions(db: Database) -> dict[str, list[str]]:
    """Per roster table, its partitions' names."""
    query = sa.text(
        "SELECT child.relname FROM pg_inherits"
        " JOIN pg_class child ON child.oid = pg_inherits.inhrelid"
        " WHERE pg_inherits.inhparent = CAST(:t AS regclass) ORDER BY child.relname"
    )
    with db.read() as conn:
        return {t: list(conn.execute(query, {"t": t}).scalars()) for t in ROSTER}


def _indexes(db: Database, table: str) -> dict[str, str]:
    """The table's indexes by name, as a downstream reader's DBA sees them."""
    query = sa.text(
        "SELECT c.relname, replace(pg_get_indexdef(i.indexrelid), ' ON ONLY ', ' ON ')"
        " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE i.indrelid = CAST(:t AS regclass) ORDER BY 1"
    )
    with db.read() as conn:
        return {name: definition for name, definition in conn.execute(query, {"t": table})}


def _statistics(db: Database, table: str, column: str) -> dict[str, int]:
    """The planner's row count of `table`, and how many histogram bounds `column` has."""
    with db.read() as conn:
        rows = conn.execute(
            sa.text("SELECT reltuples FROM pg_class WHERE oid = CAST(:t AS regclass)"),
            {"t": table},
        ).scalar_one()
        bounds = conn.execute(
            sa.text(
                "SELECT cardinality(histogram_bounds::text::text[]) FROM pg_stats"
                " WHERE tablename = :t AND attname = :c"
            ),
            {"t": table, "c": column},
        ).scalar_one()
    return {"rows": int(rows), "bounds": int(bounds or 0)}


def _count(db: Database, table: str) -> int:
    with db.read() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(sa.table(table))).scalar_one()
        )


def _partition_indexes(db: Database, partition: str) -> list[tuple[str, bool]]:
    """The partition's indexes: (the parent index each belongs to, valid)."""
    query = sa.text(
        "SELECT parent.relname, i.indisvalid FROM pg_index i"
        " JOIN pg_inherits h ON h.inhrelid = i.indexrelid"
        " JOIN pg_class parent ON parent.oid = h.inhparent"
        " WHERE i.indrelid = CAST(:t AS regclass) ORDER BY 1"
    )
    with db.read() as conn:
        return [(name, valid) for name, valid in conn.execute(query, {"t": partition})]


def _tenant_id(db: Database, name: str) -> int:
    with db.read() as conn:
        return tenants.get(conn, name).id


def test_a_districts_first_import_builds_its_own_partition_with_every_index(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    generate(tmp_path / "acme", 300)
    generate(tmp_path / "acme-next", 300, change=0.05)
    generate(tmp_path / "bravo", 200)
    add_tenant(db, "acme", NEVER_PAUSE)
    add_tenant(db, "bravo", NEVER_PAUSE)
    indexes_before = {t: _indexes(db, t) for t in ROSTER}
    pipeline = pipeline_for(db, settings)

    assert run_import(pipeline, "acme", tmp_path / "acme").state is ImportState.IMPORTED
    acme = _tenant_id(db, "acme")
    assert _partitions(db) == {t: [f"{t}_t{acme}"] for t in ROSTER}
    for table in ROSTER:
        # every index of the parent has its partition's, built and valid
        assert _partition_indexes(db, f"{table}_t{acme}") == [
            (name, True) for name in _indexes(db, table)
        ]
    # what downstream readers query is the same as before the first import
    assert {t: _indexes(db, t) for t in ROSTER} == indexes_before
    # analyzed in the import, from a small sample: the next import is planned on them
    stats = _statistics(db, f"enrollments_t{acme}", "student_id")
    assert stats["rows"] == _count(db, f"enrollments_t{acme}")
    assert 2 <= stats["bounds"] <= STATISTICS_TARGET + 1

    # the next import writes into the same partition; another district gets its own
    report = run_import(pipeline, "acme", tmp_path / "acme-next")
    assert report.state is ImportState.IMPORTED
    assert report.entities["students"].updated > 0
    assert run_import(pipeline, "bravo", tmp_path / "bravo").state is ImportState.IMPORTED
    bravo = _tenant_id(db, "bravo")
    assert _partitions(db) == {t: [f"{t}_t{acme}", f"{t}_t{bravo}"] for t in ROSTER}
    with db.read() as conn:
        assert active_counts(conn, bravo)["students"] == 200
        assert active_counts(conn, acme)["students"] == pytest.approx(300, abs=15)


def test_a_query_repeated_on_one_connection_locks_only_its_districts_partition(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """A pooled connection runs the same statements all day; prepared after five runs, their
    plan must still be for the statement's own district, or it locks every district's."""
    generate(tmp_path / "acme", 50)
    add_tenant(db, "acme", NEVER_PAUSE)
    assert run_import(pipeline_for(db, settings), "acme", tmp_path / "acme").state is (
        ImportState.IMPORTED
    )
    acme = _tenant_id(db, "acme")
    with db.write() as conn:  # 30 other districts' partitions
        for n in range(10_000, 10_030):
            conn.execute(
                sa.text(f"CREATE TABLE students_t{n} PARTITION OF students FOR VALUES IN ({n})")
            )
    locked = sa.text(
        "SELECT c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
        " WHERE l.pid = pg_backend_pid() AND c.relkind = 'r' AND c.relname LIKE 'students_t%'"
    )
    with db.read() as conn:
        for _ in range(20):
            assert active_counts(conn, acme)["students"] == 50
        assert set(conn.execute(locked).scalars()) == {f"students_t{acme}"}


def test_two_districts_first_imports_at_once_both_finish(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """Attaching waits for the other district's commit: one after the other, never a deadlock."""
    for name in ("acme", "bravo"):
        generate(tmp_path / name, 300)
        add_tenant(db, name, NEVER_PAUSE)
    stops = tmp_path / "stops"
    stops.mkdir()
    point = "apply-before-commit"
    acme = subprocess.Popen(  # acme's import holds its attached partitions, uncommitted
        [str(ROSTERDROP), "import", str(tmp_path / "acme"), "--tenant", "acme"],
        env={**rosterdrop_env(settings), STOP_AT: f"{point}:{stops}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    states: dict[str, ImportState] = {}
    bravo = threading.Thread(
        target=lambda: states.update(
            bravo=run_import(pipeline_for(db, settings), "bravo", tmp_path / "bravo").state
        )
    )
    try:
        _wait_for(lambda: (stops / f"{point}.reached").exists(), acme)
        bravo.start()
        _wait_for(lambda: _waiting_on_a_lock(db) == ["ALTER TABLE schools ATTACH PARTITION"], acme)
        (stops / f"{point}.go").touch()
        assert acme.wait(60) == 0
        bravo.join(60)
    finally:
        if acme.poll() is None:
            acme.kill()
    assert states == {"bravo": ImportState.IMPORTED}
    ids = sorted(_tenant_id(db, n) for n in ("acme", "bravo"))
    assert _partitions(db)["enrollments"] == [f"enrollments_t{i}" for i in ids]


def _waiting_on_a_lock(db: Database) -> list[str]:
    """What the database's other sessions wait for a lock to do (their statements' start)."""
    query = sa.text(
        "SELECT query FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock'"
    )
    with db.read() as conn:
        return [" ".join(q.split()[:5]) for q in conn.execute(query).scalars()]


def _wait_for(condition: Callable[[], bool], process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert process.poll() is None, "the held import ended"
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_first_import_killed_before_its_commit_leaves_no_partition_behind(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    generate(tmp_path / "acme", 300)
    env = rosterdrop_env(settings)
    add_tenant(db, "acme", NEVER_PAUSE)
    stops = tmp_path / "stops"
    stops.mkdir()
    point = "apply-before-commit"
    importer = subprocess.Popen(
        [str(ROSTERDROP), "import", str(tmp_path / "acme"), "--tenant", "acme"],
        env={**env, STOP_AT: f"{point}:{stops}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(lambda: (stops / f"{point}.reached").exists(), importer)
        # the partitions are attached in the open transaction: nobody else sees them
        assert _partitions(db) == {t: [] for t in ROSTER}
        os.kill(importer.pid, signal.SIGKILL)
    finally:
        if importer.poll() is None:
            importer.kill()
        importer.wait(30)
    deadline = time.monotonic() + 30
    while _open_transactions(db) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _partitions(db) == {t: [] for t in ROSTER}

    pipeline = pipeline_for(db, settings)
    assert pipeline.recover() == [("acme", 1)]
    assert pipeline.run(1).state is ImportState.IMPORTED
    acme = _tenant_id(db, "acme")
    assert _partitions(db) == {t: [f"{t}_t{acme}"] for t in ROSTER}


def _open_transactions(db: Database) -> int:
    with db.read() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid() AND state <> 'idle'"
                )
            ).scalar_one()
        )


def test_the_migration_moves_every_row_and_index_into_partitions_and_back(
    settings: Settings, tmp_path: Path
) -> None:
    db = Database(settings.database_url, lock_dir=settings.paths.locks)
    try:
        db.upgrade()
        for name, students in (("acme", 300), ("bravo", 150)):
            generate(tmp_path / name, students)
            add_tenant(db, name, NEVER_PAUSE)
        migrate(db, "downgrade", "0013")  # the tables as they were before
        assert _partitions(db) == {t: [] for t in ROSTER}
        pipeline = pipeline_for(db, settings)
        for name in ("acme", "bravo"):
            assert run_import(pipeline, name, tmp_path / name).state is ImportState.IMPORTED
        rows = {name: tables(db, name) for name in ("acme", "bravo")}
        indexes = {t: _indexes(db, t) for t in ROSTER}

        migrate(db, "upgrade", "0014")
        ids = sorted(_tenant_id(db, n) for n in ("acme", "bravo"))
        assert _partitions(db) == {t: [f"{t}_t{i}" for i in ids] for t in ROSTER}
        assert {name: tables(db, name) for name in rows} == rows
        assert {t: _indexes(db, t) for t in ROSTER} == indexes

        migrate(db, "downgrade", "0013")
        assert _partitions(db) == {t: [] for t in ROSTER}
        assert {name: tables(db, name) for name in rows} == rows
        assert {t: _indexes(db, t) for t in ROSTER} == indexes
    finally:
        db.close()


def test_the_migration_keeps_grants_owner_and_comments_and_refuses_to_lose_a_view(
    settings: Settings,
) -> None:
    db = Database(settings.database_url, lock_dir=settings.paths.locks)
    try:
        db.upgrade()
        add_tenant(db, "acme", NEVER_PAUSE)
        migrate(db, "downgrade", "0013")
        with db.write() as conn:
            conn.execute(sa.text("DROP ROLE IF EXISTS roster_reader"))
            conn.execute(sa.text("CREATE ROLE roster_reader"))
            conn.execute(sa.text("GRANT SELECT ON students, enrollments TO roster_reader"))
            conn.execute(sa.text("COMMENT ON TABLE students IS 'read WHERE active'"))
            conn.execute(sa.text("COMMENT ON COLUMN students.grade IS 'CEDS code'"))
            conn.execute(sa.text("CREATE VIEW active_students AS SELECT * FROM students"))

        with pytest.raises(StoreError, match=r"view active_students reads students.*Drop them"):
            migrate(db, "upgrade", "0014")
        assert db.schema_version() == "0013"  # nothing changed
        with db.write() as conn:
            conn.execute(sa.text("DROP VIEW active_students"))
        migrate(db, "upgrade", "0014")

        with db.read() as conn:
            granted = conn.execute(
                sa.text(
                    "SELECT table_name FROM information_schema.role_table_grants"
                    " WHERE grantee = 'roster_reader' AND privilege_type = 'SELECT' ORDER BY 1"
                )
            ).scalars()
            assert list(granted) == ["enrollments", "students"]
            comments = conn.execute(
                sa.text(
                    "SELECT obj_description(CAST('students' AS regclass), 'pg_class'),"
                    " col_description(CAST('students' AS regclass),"
                    " (SELECT attnum FROM pg_attribute WHERE attrelid = CAST('students' AS"
                    " regclass) AND attname = 'grade'))"
                )
            ).one()
            assert tuple(comments) == ("read WHERE active", "CEDS code")
            owner = conn.execute(
                sa.text("SELECT tableowner FROM pg_tables WHERE tablename = 'students'")
            ).scalar_one()
            assert owner == "rosterdrop"
    finally:
        with db.write() as conn:
            conn.execute(sa.text("DROP OWNED BY roster_reader"))
            conn.execute(sa.text("DROP ROLE roster_reader"))
        db.close()


def test_the_migration_refuses_to_start_without_lock_slots_for_every_district(
    tmp_path: Path,
) -> None:
    """One transaction holds every district's new partitions and their indexes: on a server
    too small for them it changes nothing and says which setting to raise; raised, it runs."""
    server = postgres.Server()
    small = " -c max_connections=20 -c max_locks_per_transaction=10"  # room for 150 slots
    server.options += small
    server.start()
    try:
        dbs = {}
        for name in ("fits", "fails"):
            db = Database(postgres.create_database(server.url, name), lock_dir=tmp_path / name)
            db.upgrade()
            dbs[name] = db
        with dbs["fits"].read() as conn:  # a district's partitions: one per table, and indexes
            per_district = len(ROSTER) + conn.execute(
                sa.text("SELECT count(*) FROM pg_index WHERE indrelid = ANY(:t)"),
                {"t": [conn.execute(sa.text(f"SELECT CAST('{t}' AS regclass)::oid")).scalar()
                       for t in ROSTER]},
            ).scalar_one()  # fmt: skip
        fits = 150 // per_district
        for name, districts in (("fits", fits), ("fails", fits + 1)):
            for n in range(districts):
                add_tenant(dbs[name], f"district{n}")
            migrate(dbs[name], "downgrade", "0013")

        migrate(dbs["fits"], "upgrade", "0014")
        with pytest.raises(StoreError, match=r"max_locks_per_transaction = (\d+) or more") as e:
            migrate(dbs["fails"], "upgrade", "0014")
        assert dbs["fails"].schema_version() == "0013"

        setting = re.search(r"max_locks_per_transaction = (\d+)", str(e.value)).group(1)  # type: ignore[union-attr]
        for db in dbs.values():
            db.engine.dispose()
        server.stop()
        server.options = server.options.replace(
            small, f" -c max_connections=20 -c max_locks_per_transaction={setting}"
        )
        server.start()
        migrate(dbs["fails"], "upgrade", "0014")
        assert dbs["fails"].schema_version() == "0014"
        for db in dbs.values():
            db.close()
    finally:
        server.remove()
