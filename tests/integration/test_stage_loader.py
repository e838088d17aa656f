"""The stage loads the columnar engine's records in a thread of its own on PostgreSQL, while
the next are checked. Whoever uses the stage's connection next finds every load done, and a
load that fails fails the import: nothing staged is lost or half there."""

from __future__ import annotations

import os
import threading
import time

import polars as pl
import psycopg
import pytest
import sqlalchemy as sa

from daemon.roster.entities import STUDENTS
from daemon.store.database import Database
from daemon.store.staging import STAGE, Stage
from tests.support import postgres


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    return postgres.create_database(postgres_server, f"loader_{os.getpid()}_{time.time_ns()}")


def _students(first_line: int, rows: int, *, line: object = None) -> pl.DataFrame:
    lines = range(first_line, first_line + rows)
    return pl.DataFrame(
        {
            "school_id": ["SCH1"] * rows,
            "student_id": [f"S{n}" for n in lines],
            "first_name": ["Ada"] * rows,
            "last_name": [f"Lovelace {n}" for n in lines],
            "email": [None] * rows,
            "username": [None] * rows,
            "grade": ["5"] * rows,
            "extra": ["{}"] * rows,
            "line": list(lines) if line is None else [line] * rows,
            "held": [False] * rows,
            "kept": [None] * rows,
        }
    ).select(STUDENTS.stage_columns)


def _stage_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("rosterdrop-stage")]


def test_every_record_loaded_is_there_when_the_connection_is_next_used(
    database_url: str,
) -> None:
    db = Database(database_url)
    try:
        with db.write() as conn, Stage(conn) as stage:
            for start in range(0, 200_000, 50_000):
                stage.load_table(STUDENTS, _students(start + 2, 50_000))
            staged = STAGE["students"]
            lines = stage.conn.execute(
                sa.select(sa.func.count(), sa.func.min(staged.c.line), sa.func.max(staged.c.line))
            ).one()
            assert tuple(lines) == (200_000, 2, 200_001)
            assert stage.counts(STUDENTS) == (200_000, 0)
            stage.close()
        assert _stage_threads() == []
    finally:
        db.close()


def _import(db: Database, *loads: pl.DataFrame, fail: bool = False) -> None:
    """An import's transaction that stages `loads`, then uses its connection (or fails)."""
    with db.write() as conn, Stage(conn) as stage:
        for records in loads:
            stage.load_table(STUDENTS, records)
        if fail:
            raise RuntimeError("a fatal problem")
        stage.conn.execute(sa.text("SELECT 1"))


@pytest.mark.postgres
def test_a_load_that_fails_is_raised_at_the_next_use_once_every_load_has_ended(
    postgres_url: str,
) -> None:
    """PostgreSQL refuses the second load (a line that is not a number): the error reaches
    the import when it next uses the connection, after the third load has ended too."""
    db = Database(postgres_url)
    try:
        loads = _students(2, 50_000), _students(50_002, 10, line="x"), _students(50_012, 50_000)
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            _import(db, *loads)
        assert _stage_threads() == []
        with db.read() as conn:  # rolled back: the connection serves the next as it should
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    finally:
        db.close()


@pytest.mark.postgres
def test_an_import_leaving_with_its_own_error_waits_for_the_loads_and_keeps_its_error(
    postgres_url: str,
) -> None:
    db = Database(postgres_url)
    try:
        with pytest.raises(RuntimeError, match="a fatal problem"):
            _import(db, _students(2, 10, line="x"), _students(12, 50_000), fail=True)
        assert _stage_threads() == []
    finally:
        db.close()
