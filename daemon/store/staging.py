"""Staging an upload in temporary tables: the snapshot the diff (daemon/store/diff.py) compares
with the roster and the apply (daemon/store/apply.py) writes from.

Everything happens inside the caller's transaction. PostgreSQL is fed with COPY, SQLite with
batched inserts.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from daemon.roster.entities import ENROLLMENTS, ENTITIES, Entity
from daemon.store.tables import roster_tables

BATCH_ROWS = 20_000
# Loads that may wait for the stage's loader thread while the next records are checked:
# each holds its records in memory (a chunk of `engine.LOAD_ROWS`, or a delta's settled
# rows and gone keys: a hundredth of the enrollments on a nightly export).
LOADS_IN_FLIGHT = 2
# Hash joins over a big district's enrollments spill to disk with PostgreSQL's default 4 MB.
WORK_MEM = "256MB"
# Of the stage's statistics (PostgreSQL's default: 100, a sample of 30,000 rows).
STATISTICS_TARGET = 10
ADD, UPDATE, REACTIVATE, DEACTIVATE = "add", "update", "reactivate", "deactivate"
Row = tuple[Any, ...]


def _temp_table(name: str, meta: sa.MetaData, *columns: sa.Column[Any]) -> sa.Table:
    return sa.Table(name, meta, *columns, prefixes=["TEMPORARY"], postgresql_on_commit="DROP")


def _typed(entity: Entity, names: Iterable[str]) -> list[sa.Column[Any]]:
    live = roster_tables[entity.name]
    return [sa.Column(name, live.c[name].type) for name in names]


_META = sa.MetaData()
STAGE = {
    e.name: _temp_table(
        f"stage_{e.name}",
        _META,
        *_typed(e, e.columns),
        sa.Column("line", sa.Integer),
        # Defaults a plain record's: `staging_load` leaves out a column all of whose
        # values are its default (binding them cost SQLite 40 % of its inserts).
        sa.Column("held", sa.Boolean, server_default=sa.false()),
        sa.Column("kept", sa.Text),  # ",grade," : fields whose roster value stays
    )
    for e in ENTITIES
}
# Rows skipped without holding their record (an unknown school, a missing parent): the plan
# counts the records it deactivates although the upload named them.
SKIPPED = {
    e.name: _temp_table(
        f"skipped_{e.name}", _META, *_typed(e, e.key), sa.Column("line", sa.Integer)
    )
    for e in ENTITIES
}
# Keys that occur more than once in the stage, with the line they first occur on.
REPEATED = {
    e.name: _temp_table(
        f"repeated_{e.name}", _META, *_typed(e, e.key), sa.Column("first", sa.Integer)
    )
    for e in ENTITIES
}
# Lines that may repeat another's key (the columnar engine's hash candidates): the only rows
# the duplicate search then groups.
CANDIDATES = {
    e.name: _temp_table(f"candidate_{e.name}", _META, sa.Column("line", sa.Integer))
    for e in ENTITIES
}
# Entities staged as a delta on a re-import (`staging_delta`): only their changeable rows, and
# in `gone_*` the roster's active keys no unchanged row names. Only an entity without fields,
# whose key alone decides what the diff does with it (students' fields, read back and
# compared in polars, cost more than the database's own diff).
DELTA = (ENROLLMENTS,)
GONE = {e.name: _temp_table(f"gone_{e.name}", _META, *_typed(e, e.key)) for e in DELTA}
CHANGES = {
    e.name: _temp_table(
        f"changes_{e.name}",
        _META,
        *_typed(e, e.columns),
        sa.Column("action", sa.String(16)),
        *(sa.Column(f"changed_{f}", sa.Boolean) for f in e.fields),
    )
    for e in ENTITIES
}

_TABLES = (
    *STAGE.values(),
    *SKIPPED.values(),
    *REPEATED.values(),
    *CANDIDATES.values(),
    *GONE.values(),
    *CHANGES.values(),
)


class _Writer:
    """Buffers rows for one staging table and sends them in batches."""

    def __init__(self, stage: Stage, table: sa.Table) -> None:
        self.stage = stage
        self.table = table
        self.rows: list[Row] = []
        self.written = 0
        self.held = 0

    def append(self, row: Row) -> None:
        self.rows.append(row)
        if len(self.rows) >= BATCH_ROWS:
            self.flush()

    def extend(self, rows: Iterable[Row]) -> None:
        self.rows.extend(rows)
        if len(self.rows) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.written += len(self.rows)
            self.held += sum(1 for row in self.rows if row[-2])
            self.stage._send(self.table, self.rows)
            self.rows = []


class Stage:
    """One upload's records in temporary tables: a SnapshotSink for the validator.

    `tenant_id`: the tenant whose roster the stage is diffed with; then a re-import's
    enrollments are staged as a delta (`staging_delta`). `reader` (`Database.read`, for an
    import that holds the tenant's lock): the delta's keys are read ahead, in a thread.

    The columnar engine's records are loaded by a thread of the stage's own, on the stage's
    connection, while the main thread checks the next ones: `conn` waits for those loads, so
    whoever uses the connection finds them done. Use the stage as a context manager, which
    waits for its threads on the way out."""

    def __init__(
        self,
        conn: Connection,
        tenant_id: int | None = None,
        *,
        reader: Callable[[], AbstractContextManager[Connection]] | None = None,
    ) -> None:
        self._conn = conn
        self._loader: ThreadPoolExecutor | None = None
        self._loads: deque[Future[None]] = deque()  # in the loader's order
        self.tenant_id = tenant_id
        self.reader = reader  # a read transaction of its own, for the keys read ahead
        self.postgres = conn.dialect.name == "postgresql"
        self._writers = {e.name: _Writer(self, STAGE[e.name]) for e in ENTITIES}
        self._skipped = {e.name: _Writer(self, SKIPPED[e.name]) for e in ENTITIES}
        self._dropped = dict.fromkeys(self._writers, 0)  # repeated rows, dropped
        self._dropped_held = dict.fromkeys(self._writers, 0)  # of which held
        self._empty: set[str] = set()  # entities the tenant has no rows of yet
        # Per DELTA entity of a re-import: what its columnar records left unstaged, until
        # the duplicate search settles it (None: every row staged).
        self._deltas: dict[str, Any] = {}  # staging_delta.Delta
        self._reading: dict[str, Any] = {}  # Future[Delta | None]: a delta's keys being read
        self._gone_listed: set[str] = set()  # entities whose gone_* table lists deactivations
        self._active: dict[str, dict[str, int]] = {}  # what the deltas read: active by school
        if self.postgres:
            conn.execute(sa.text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
        for table in _TABLES:
            if not self.postgres:
                conn.execute(sa.text(f"DROP TABLE IF EXISTS temp.{table.name}"))
            table.create(conn)

    @property
    def conn(self) -> Connection:
        """The stage's connection, once the loads given to its loader thread have ended."""
        if self._loads:
            self._wait_loads()
        return self._conn

    def __enter__(self) -> Stage:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        self._end_threads(failing=kind is not None)

    def _end_threads(self, *, failing: bool = False) -> None:
        """Wait for the loads in flight, and the reads ahead no delta took (a fatal problem,
        the careful reader): no thread of this stage uses a connection after it. `failing`:
        the caller is leaving with an exception of its own, which a load's must not hide."""
        for reading in self._reading.values():
            reading.exception()  # its end, whatever it was: it is not needed any more
        self._reading.clear()
        try:
            if self._loads:
                self._wait_loads()
        except Exception:
            if not failing:
                raise
        finally:
            if self._loader is not None:
                self._loader.shutdown()
                self._loader = None

    def _load_later(self, table: sa.Table, records: Any, key: tuple[str, ...]) -> None:
        """Load a pyarrow table of records in the loader thread, after those before it;
        wait while more than LOADS_IN_FLIGHT are not done (their memory). On SQLite, now:
        its inserts bind every value in Python, holding the GIL the checks would need (a
        thread gained nothing, and took 30 MB more)."""
        from daemon.store import staging_load

        if not self.postgres:
            staging_load.load(self._conn, table, records, key)
            return
        if self._loader is None:
            self._loader = ThreadPoolExecutor(1, thread_name_prefix="rosterdrop-stage")
        self._loads.append(self._loader.submit(staging_load.load, self._conn, table, records, key))
        while len(self._loads) > LOADS_IN_FLIGHT:
            if self._loads[0].exception() is not None:
                self._wait_loads()  # raises once the loads after it have ended too
            self._loads.popleft()

    def _wait_loads(self) -> None:
        """Wait for every load in flight, then raise the first one's error, if any: all
        have ended before the connection is used again (a failed load fails those after it,
        in PostgreSQL's aborted transaction). Interrupted while it waits, the loads it had
        taken are waited for by the loader's shutdown, on the stage's way out."""
        loads, self._loads = self._loads, deque()
        errors = [error for load in loads if (error := load.exception()) is not None]
        if errors:
            raise errors[0]

    def close(self) -> None:
        """Drop the tables (PostgreSQL drops them at commit by itself)."""
        self._end_threads()
        if not self.postgres:
            for table in _TABLES:
                self.conn.execute(sa.text(f"DROP TABLE IF EXISTS temp.{table.name}"))

    # -- SnapshotSink -----------------------------------------------------------------------

    def writer(self, entity: Entity) -> _Writer:
        return self._writers[entity.name]

    def skipped(self, entity: Entity) -> _Writer:
        return self._skipped[entity.name]

    def load_table(self, entity: Entity, records: Any) -> None:
        """A polars frame of records (`Entity.stage_columns`) at once, through `staging_load`
        (imports pyarrow) in the loader thread; on a re-import, only those that can change
        (`staging_delta`)."""
        self._read_ahead()
        writer = self._writers[entity.name]
        writer.written += records.height
        writer.held += int(records.get_column("held").sum())
        delta = self._delta_for(entity)
        if delta is not None:
            records = delta.block(records)
        self._load_later(writer.table, records.to_arrow(), entity.key)

    def _read_ahead(self) -> None:
        """At the columnar engine's first records (a school's), begin reading the roster's
        keys of each DELTA entity on a connection of its own: the database and polars take
        them while the files before enrollments are checked (0.3-0.5 s less)."""
        if self.tenant_id is None or self.reader is None or self._reading or self._deltas:
            return
        from daemon.store.staging_delta import read_later

        for entity in DELTA:
            self._reading[entity.name] = read_later(self.reader, entity, self.tenant_id)

    def _delta_for(self, entity: Entity) -> Any:
        """The entity's `staging_delta.Delta`, read ahead or now (None: the tenant has none of
        its records yet, and a first import stages every row for the apply to copy)."""
        if entity.name not in self._deltas:
            from daemon.store import staging_delta

            reading = self._reading.pop(entity.name, None)
            if reading is not None:
                self._deltas[entity.name] = reading.result()
            elif self.tenant_id is not None and entity in DELTA:
                self._deltas[entity.name] = staging_delta.read(self.conn, entity, self.tenant_id)
            else:
                self._deltas[entity.name] = None
        return self._deltas[entity.name]

    def _settle(self, entity: Entity, among: Sequence[int] | None) -> None:
        """End a delta: stage the unchanged rows that may repeat a key (all of them when
        which may is not known: then the diff reads the whole stage), and the gone keys."""
        delta = self._deltas.get(entity.name)
        if delta is None:
            return
        self._deltas[entity.name] = None
        self._active[entity.name] = delta.active
        staged, gone = delta.settle(among)
        self._load_later(STAGE[entity.name], staged.to_arrow(), entity.key)
        if among is not None:
            self._load_later(GONE[entity.name], gone.to_arrow(), entity.key)
            self._gone_listed.add(entity.name)

    def delta(self, entity: Entity) -> bool:
        """Whether `entity` was staged as a delta: only its changeable rows, and in `gone_*`
        the roster's active keys that no unchanged row names."""
        return entity.name in self._gone_listed

    def active_by_school(self, entity: Entity) -> dict[str, int] | None:
        """The tenant's active records of `entity` by school, if its delta read them."""
        return self._active.get(entity.name)

    def analyze(self, entity: Entity) -> None:
        """Statistics of the staged records before they are joined: PostgreSQL never
        analyzes a temporary table by itself, and without them took 700,000 staged
        enrollments for 29,000 and planned a merge join of two sorts (2.4 s, not 0.7 s)."""
        if self.postgres:
            # A small sample is enough to count rows and keys.
            self.conn.execute(sa.text(f"SET LOCAL default_statistics_target = {STATISTICS_TARGET}"))
            self.conn.execute(sa.text(f"ANALYZE {STAGE[entity.name].name}"))
            if self.delta(entity):
                self.conn.execute(sa.text(f"ANALYZE {GONE[entity.name].name}"))
            self.conn.execute(sa.text("SET LOCAL default_statistics_target TO DEFAULT"))

    def discard(self, entity: Entity) -> None:
        """Forget every record of `entity` staged so far (the columnar engine's blocks of a
        file the careful reader must read after all)."""
        writer = self._writers[entity.name]
        writer.rows, writer.written, writer.held = [], 0, 0
        reading = self._reading.pop(entity.name, None)
        if reading is not None:
            reading.exception()  # ended, and its keys let go
        self._deltas[entity.name] = None  # the careful reader stages every row itself
        self.conn.execute(writer.table.delete())

    def index_key(self, entity: Entity) -> None:
        """SQLite joins and groups through indexes only: without one on the stage's key, the
        diff would be quadratic and the duplicate search a sort of every row. With `held`
        and `line` in it, the index alone answers both for enrollments, in key order, so the
        roster's primary key is read in order too (three times faster than in file order)."""
        if not self.postgres:
            stage, keys = STAGE[entity.name].name, ", ".join((*entity.key, "held", "line"))
            self.conn.execute(
                sa.text(f"CREATE INDEX IF NOT EXISTS temp.{stage}_key ON {stage} ({keys})")
            )

    def duplicates(
        self, entity: Entity, among: Sequence[int] | None = None
    ) -> Iterator[tuple[int, int]]:
        """Find rows repeating an earlier row's key: yield (line, first line) of each, then
        drop them all. One pass over the stage finds the repeated keys (usually none); only
        their rows are read again. Streamed: an SIS that writes every enrollment twice
        doubles a district's rows, and nothing here grows with them in memory.

        `among`: the only lines whose key can repeat (every row of a repeated key among
        them); then only those rows are grouped, and none when there are none."""
        self._settle(entity, among)
        self.flush()
        if among is not None and not among:
            return
        self.index_key(entity)
        stage, repeated = STAGE[entity.name], REPEATED[entity.name]
        keys = [stage.c[k] for k in entity.key]
        grouped = sa.select(*keys, sa.func.min(stage.c.line))
        if among is not None:
            candidates = CANDIDATES[entity.name]
            self.conn.execute(candidates.delete())
            for start in range(0, len(among), BATCH_ROWS):
                self._send(candidates, [(line,) for line in among[start : start + BATCH_ROWS]])
            grouped = grouped.select_from(stage.join(candidates, stage.c.line == candidates.c.line))
        self.conn.execute(
            repeated.insert().from_select(
                [*entity.key, "first"], grouped.group_by(*keys).having(sa.func.count() > 1)
            )
        )
        if (
            self.conn.execute(sa.select(sa.literal(1)).select_from(repeated).limit(1)).first()
            is None
        ):
            return
        match = sa.and_(*(stage.c[k] == repeated.c[k] for k in entity.key))
        repeats = (
            sa.select(stage.c.line, repeated.c.first)
            .join(repeated, match)
            .where(stage.c.line > repeated.c.first)
        )
        streamed = repeats.order_by(stage.c.line).execution_options(yield_per=BATCH_ROWS)
        yield from ((line, first) for line, first in self.conn.execute(streamed))
        lines = repeats.with_only_columns(stage.c.line, stage.c.held).subquery()
        held = sa.select(sa.func.count()).select_from(lines).where(lines.c.held)
        self._dropped_held[entity.name] += self.conn.execute(held).scalar_one()
        drop = stage.delete().where(stage.c.line.in_(sa.select(lines.c.line)))
        self._dropped[entity.name] += self.conn.execute(drop).rowcount

    def flush(self) -> None:
        """Everything given to the stage in its tables, the loader's too."""
        for entity in DELTA:
            self._settle(entity, None)
        for writer in (*self._writers.values(), *self._skipped.values()):
            writer.flush()
        if self._loads:
            self._wait_loads()

    def _send(self, table: sa.Table, rows: list[Row]) -> None:
        columns = ", ".join(c.name for c in table.columns)
        raw: Any = self.conn.connection.driver_connection
        if self.postgres:
            statement = f"COPY {table.name} ({columns}) FROM STDIN"
            with raw.cursor() as cursor, cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" * len(table.columns))
            insert = f"INSERT INTO temp.{table.name} ({columns}) VALUES ({marks})"  # noqa: S608
            raw.executemany(insert, rows)

    def new_to_tenant(self, entity: Entity) -> bool:
        """Whether the tenant had no record of `entity` before this upload (known after
        the plan): then the diff was skipped, and every fresh staged row is an add."""
        return entity.name in self._empty

    def mark_new_to_tenant(self, entity: Entity) -> None:
        self._empty.add(entity.name)

    def counts(self, entity: Entity) -> tuple[int, int]:
        """The staged records of `entity` once repeats are dropped: (fresh, held)."""
        writer = self._writers[entity.name]
        held = writer.held - self._dropped_held[entity.name]
        return writer.written - self._dropped[entity.name] - held, held

    def skipped_rows(self, entity: Entity) -> int:
        return self._skipped[entity.name].written
