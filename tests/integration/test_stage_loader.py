"""The stage loads the columnar engine's records in a thread of its own on PostgreSQL, while
the next are checked. Whoever uses the stage's connection next finds every load done, and a
load that fails fails the import: nothing staged is lost or half there."""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Iterator

import polars as pl
import psycopg
import pytest
import sqlalchemy as sa

from daemon.roster.entities import STUDENTS
from daemon.store import staging_load
from daemon.store.database import Database
from daemon.store.staging import LOADS_IN_FLIGHT, STAGE, Stage
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
            "line": pl.Series(
                list(lines) if line is None else [line] * rows, dtype=None if rows else pl.Int64
            ),
            "held": pl.Series([False] * rows, dtype=pl.Boolean),
            "kept": [None] * rows,
        },
        schema_overrides={c: pl.String for c in ("email", "username", "kept")},
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


def test_values_left_to_the_tables_defaults_read_back_as_they_were_given(
    database_url: str,
) -> None:
    """A column whose values are all its default (plain records: not held, nothing kept)
    is not sent; the stage holds the same rows as when it was."""
    mixed = _students(10, 3).with_columns(
        held=pl.Series([True, False, False]), kept=pl.Series([None, ",grade,", None])
    )
    db = Database(database_url)
    try:
        with db.write() as conn, Stage(conn) as stage:
            stage.load_table(STUDENTS, _students(2, 3))
            stage.load_table(STUDENTS, _students(5, 0))
            stage.load_table(STUDENTS, mixed)
            staged = STAGE["students"]
            rows = stage.conn.execute(
                sa.select(staged.c.line, staged.c.held, staged.c.kept, staged.c.email).order_by(
                    staged.c.line
                )
            ).all()
            assert [tuple(r) for r in rows] == [
                (2, False, None, None), (3, False, None, None), (4, False, None, None),
                (10, True, None, None), (11, False, ",grade,", None), (12, False, None, None),
            ]  # fmt: skip
            assert stage.counts(STUDENTS) == (5, 1)
            stage.close()
    finally:
        db.close()


def test_records_discarded_after_their_loads_are_gone_with_them(database_url: str) -> None:
    """The careful reader takes a file after the engine staged part of it: the loads in
    flight end before the stage forgets what they wrote."""
    db = Database(database_url)
    try:
        with db.write() as conn, Stage(conn) as stage:
            for start in range(0, 150_000, 50_000):
                stage.load_table(STUDENTS, _students(start + 2, 50_000))
            stage.discard(STUDENTS)
            staged = stage.conn.execute(sa.select(sa.func.count()).select_from(STAGE["students"]))
            assert staged.scalar_one() == 0
            assert stage.counts(STUDENTS) == (0, 0)
            stage.close()
    finally:
        db.close()


@pytest.fixture
def db(postgres_url: str) -> Iterator[Database]:
    database = Database(postgres_url)
    yield database
    database.close()


class Gate:
    """Holds the loader thread at its `at`-th load until `open_later` opens it; `ended`
    lists the loads that have ended, in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, at: int) -> None:
        self.opened = threading.Event()
        self.ended: list[int] = []
        self.events: list[str] = []
        real, calls = staging_load.load, itertools.count(1)

        def load(*args: object) -> None:
            n = next(calls)
            try:
                if n == at:
                    assert self.opened.wait(30)
                real(*args)  # type: ignore[arg-type]
            finally:
                self.ended.append(n)

        monkeypatch.setattr(staging_load, "load", load)

    def open_later(self, seconds: float = 0.3) -> None:
        def open_() -> None:
            self.events.append("opened")
            self.opened.set()

        threading.Timer(seconds, open_).start()


@pytest.mark.postgres
def test_a_failed_load_is_raised_at_the_next_use_once_the_loads_after_it_have_ended(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL refuses the second load (a line that is not a number); the third is held
    back a while. The import learns of the failure when it next uses the connection, and
    only once the third has ended: no thread is still on it when the transaction ends."""
    gate = Gate(monkeypatch, at=3)
    ended_at_raise: list[int] = []
    with (  # noqa: PT012
        pytest.raises(psycopg.errors.InvalidTextRepresentation),
        db.write() as conn,
        Stage(conn) as stage,
    ):
        stage.load_table(STUDENTS, _students(2, 50_000))
        stage.load_table(STUDENTS, _students(50_002, 10, line="x"))
        stage.load_table(STUDENTS, _students(50_012, 50_000))
        gate.open_later()
        try:
            stage.conn.execute(sa.text("SELECT 1"))
        finally:
            ended_at_raise.extend(gate.ended)
    assert ended_at_raise == [1, 2, 3]
    assert _stage_threads() == []
    with db.read() as conn:  # rolled back: the pool's connection serves the next one
        assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1


@pytest.mark.postgres
def test_a_failed_load_is_raised_by_the_load_that_waits_for_it(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first load fails while more than LOADS_IN_FLIGHT are given: the load that waits
    for it raises its error, after the loads before it in the queue have ended."""
    assert LOADS_IN_FLIGHT == 2
    gate = Gate(monkeypatch, at=2)
    ended_at_raise: list[int] = []
    with (  # noqa: PT012
        pytest.raises(psycopg.errors.InvalidTextRepresentation),
        db.write() as conn,
        Stage(conn) as stage,
    ):
        stage.load_table(STUDENTS, _students(2, 10, line="x"))
        stage.load_table(STUDENTS, _students(12, 50_000))
        gate.open_later()
        try:
            stage.load_table(STUDENTS, _students(50_012, 50_000))
        finally:
            ended_at_raise.extend(gate.ended)
    assert ended_at_raise == [1, 2, 3]
    assert _stage_threads() == []


@pytest.mark.postgres
def test_the_checks_wait_when_more_than_loads_in_flight_are_not_done(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records waiting for the loader hold memory: with the first load held back, the
    next LOADS_IN_FLIGHT - 1 are taken at once, and the one after waits for it."""
    gate = Gate(monkeypatch, at=1)
    with db.write() as conn, Stage(conn) as stage:
        for n in range(LOADS_IN_FLIGHT):
            stage.load_table(STUDENTS, _students(2 + n * 1_000, 1_000))
        gate.events.append("taken at once")
        gate.open_later()
        stage.load_table(STUDENTS, _students(2 + LOADS_IN_FLIGHT * 1_000, 1_000))
        gate.events.append("the next taken")
        staged = stage.conn.execute(sa.select(sa.func.count()).select_from(STAGE["students"]))
        assert staged.scalar_one() == (LOADS_IN_FLIGHT + 1) * 1_000
        stage.close()
    assert gate.events == ["taken at once", "opened", "the next taken"]


@pytest.mark.postgres
def test_an_import_leaving_with_its_own_error_waits_for_the_loads_and_keeps_its_error(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = Gate(monkeypatch, at=2)
    with (  # noqa: PT012
        pytest.raises(RuntimeError, match="a fatal problem"),
        db.write() as conn,
        Stage(conn) as stage,
    ):
        stage.load_table(STUDENTS, _students(2, 10, line="x"))
        stage.load_table(STUDENTS, _students(12, 50_000))
        gate.open_later()
        raise RuntimeError("a fatal problem")
    assert gate.ended == [1, 2]
    assert _stage_threads() == []
