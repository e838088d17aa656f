"""Staging only the enrollments that can change: a re-import's enrollments compared in polars
with the tenant's active ones, read once, as the columnar engine hands them over.

An enrollment has no field but its key, so what the diff finds of one is decided by the key
alone: a fresh row whose key is active in the roster is unchanged, and an active key that no
row names is deactivated. So the unchanged rows are not staged, but for those that may repeat
another's key (staged at the end, for the duplicate search); held rows and keys the roster
lacks or has inactive are. The active keys that no unchanged row names go to the stage's
`gone_*` table, and the diff (`daemon/store/diff.py`) deactivates those of them that no
staged row names either. Both databases then take a hundredth of a nightly export's
700,000 enrollments, not all of them.

Rows and active keys are paired by a 64-bit hash of the key, and a pair counts only when the
keys are equal: a collision stages a row it need not, never leaves one out. The diff still
checks every staged row against the roster.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from daemon.roster.entities import Entity
from daemon.store.staging import WORK_MEM
from daemon.store.tables import roster_tables

HASH_SEED = 0x5EED
SEPARATOR = "\x1f"  # between a key's parts: a control character, never in a stored id


class Delta:
    """One entity's records against the tenant's active keys, a block at a time.

    The active keys are read a school at a time and kept in that order without their
    school, which a key's position tells (a district's 700,000 enrollments: 23 MB, not 34);
    of each unchanged row, only its line and the key it matched."""

    def __init__(self, conn: Connection, entity: Entity, tenant_id: int) -> None:
        self.entity = entity
        self.keys = list(entity.key)
        school, *rest = self.keys
        parts = [pl.DataFrame(schema=dict.fromkeys(rest, pl.String))]
        hashes, schools, starts, height = [], [], [], 0
        self.active: dict[str, int] = {}  # the active records by school, as the diff counts
        # Closed here, not when collected: a named cursor closed after the rollback would
        # fail the pooled connection's next transaction.
        with contextlib.closing(_active_batches(conn, entity, tenant_id)) as batches:
            for school_id, batch in batches:
                hashes.append(_hash(batch.select(pl.lit(school_id).alias(school), *rest)))
                parts.append(batch)
                schools.append(school_id)
                starts.append(height)
                height += batch.height
                self.active[school_id] = batch.height
        self.rest = pl.concat(parts)
        self.schools = pl.Series(school, schools, dtype=pl.String)
        self.starts = pl.Series(starts, dtype=pl.UInt32)
        self.hashes = pl.DataFrame({"h": pl.concat([pl.Series([], dtype=pl.UInt64), *hashes])})
        self.hashes = self.hashes.with_row_index("a")
        self.unchanged: list[pl.DataFrame] = []  # line, a: the active key it names

    def _keys(self, a: pl.Series) -> pl.DataFrame:
        """The active keys at positions `a`."""
        school = self.schools.gather(self.starts.search_sorted(a, side="right") - 1)
        return self.rest[a].insert_column(0, school)

    def block(self, records: pl.DataFrame) -> pl.DataFrame:
        """Of records (`Entity.stage_columns`), those to stage now."""
        rows = pl.DataFrame({"h": _hash(records.select(self.keys))}).with_row_index("r")
        pairs = self.hashes.join(rows, on="h").drop("h")  # of a few, the faster way round
        r = pairs.get_column("r")
        named = self._keys(pairs.get_column("a"))
        same = pl.repeat(True, pairs.height, dtype=pl.Boolean, eager=True)
        for k in self.keys:
            same &= records.get_column(k).gather(r) == named.get_column(k)
        held = records.get_column("held")
        matched = pairs.filter(same & ~held.gather(r))  # held rows are staged whatever
        r = matched.get_column("r")
        self.unchanged.append(
            matched.select(records.get_column("line").gather(r).cast(pl.Int64), "a")
        )
        return records.filter(~_marked(records.height, r))

    def settle(self, candidates: Sequence[int] | None) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(the unchanged rows that may repeat a key after all, to stage so the duplicate
        search sees every row of a repeated key; the active keys no unchanged row names).

        `candidates` None: which lines may repeat is not known, so every row is staged."""
        unchanged = pl.concat(
            [pl.DataFrame(schema={"line": pl.Int64, "a": pl.UInt32}), *self.unchanged]
        )
        self.unchanged = []
        if candidates is not None:
            repeating = unchanged.filter(pl.col("line").is_in(list(candidates)))
        else:
            repeating = unchanged
        staged = self._keys(repeating.get_column("a")).with_columns(
            repeating.get_column("line"), held=pl.lit(False), kept=pl.lit(None, pl.String)
        )
        named = _marked(self.rest.height, unchanged.get_column("a"))
        gone = pl.int_range(0, self.rest.height, dtype=pl.UInt32, eager=True).filter(~named)
        return staged, self._keys(gone)


def read(conn: Connection, entity: Entity, tenant_id: int) -> Delta | None:
    """The tenant's `Delta` of `entity` (None: the tenant has no records of it yet, which
    a first import copies whole, or a key the read cannot tell apart)."""
    live = roster_tables[entity.name]
    known = sa.select(sa.literal(1)).where(live.c.tenant_id == tenant_id).limit(1)
    if conn.execute(known).first() is None:
        return None
    with contextlib.suppress(Unreadable):
        return Delta(conn, entity, tenant_id)
    return None


def read_later(
    reader: Callable[[], AbstractContextManager[Connection]], entity: Entity, tenant_id: int
) -> Future[Delta | None]:
    """`read`, in a thread, in a transaction of its own from `reader` (`Database.read`).

    For an import only, which holds the tenant's lock: nothing else changes its records
    meanwhile, and until its apply the import itself changes none, so both transactions
    see the same. A dry run holds no lock, and reads in its own transaction."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="rosterdrop-keys")
    try:
        return pool.submit(_read_apart, reader, entity, tenant_id)
    finally:
        pool.shutdown(wait=False)  # the thread ends with its one task


def _read_apart(
    reader: Callable[[], AbstractContextManager[Connection]], entity: Entity, tenant_id: int
) -> Delta | None:
    with reader() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text(f"SET LOCAL work_mem = '{WORK_MEM}'"))  # as the stage's
        delta = read(conn, entity, tenant_id)
        if conn.dialect.name == "sqlite":
            # The connection goes back to the pool, its page cache (16 MiB) not with it.
            conn.exec_driver_sql("PRAGMA shrink_memory")
        return delta


class Unreadable(Exception):
    """A roster key that the delta's read cannot tell apart (a line break or a unit
    separator in it: rosterdrop stores none, but the roster may have come from elsewhere);
    then the stage takes every row, as without a delta."""


def _active_batches(
    conn: Connection, entity: Entity, tenant_id: int
) -> Generator[tuple[str, pl.DataFrame]]:
    """The keys of the tenant's active records of `entity`, a school at a time: the school,
    and the rest of each key.

    Each school's keys come as one text, a key a line: the database builds it in C and
    polars takes its parts (a row per key as Python tuples took twice as long, and their
    objects 50 MB more at the import's peak)."""
    live = roster_tables[entity.name]
    school, *rest = (live.c[k] for k in entity.key)
    postgres = conn.dialect.name == "postgresql"
    key = rest[0]
    for column in rest[1:]:
        key = key + sa.literal(SEPARATOR) + column  # type: ignore[assignment]
    concat = sa.func.string_agg if postgres else sa.func.group_concat
    query = (
        sa.select(school, sa.func.count(), concat(key, sa.literal("\n")))
        .where(live.c.tenant_id == tenant_id, live.c.active)
        .group_by(school)
    )
    rest_names = list(entity.key[1:])
    raw: Any = conn.connection.driver_connection
    # A school at a time from the server, not the whole district's keys at once.
    cursor = raw.cursor("rosterdrop_active_keys") if postgres else raw.cursor()
    sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
    try:
        if postgres:
            cursor.itersize = 1
            # Planned for all its rows: for a cursor PostgreSQL prefers a plan that yields
            # the first ones soon (the primary key in order, 0.75 s, not a scan: 0.3 s).
            conn.execute(sa.text("SET LOCAL cursor_tuple_fraction = 1"))
            cursor.execute(sql)
            conn.execute(sa.text("SET LOCAL cursor_tuple_fraction TO DEFAULT"))
        else:
            cursor.execute(sql)
        for school_id, rows, keys in cursor:
            yield school_id, _split(keys, rows, rest_names)
    finally:
        cursor.close()


def _split(text: str, rows: int, names: list[str]) -> pl.DataFrame:
    """One school's keys from the database's text, a key a line, its parts apart by
    SEPARATOR; split exactly. Every line has its parts' separators and the text its lines'
    breaks, so counts of either beyond those mean a part holds one, and the text cannot be
    told apart (not parsed as CSV: polars' reader drops a carriage return ending a value and
    a byte-order mark starting the text, and a key read back changed would pair with an
    upload row it is not)."""
    parts = len(names)
    if text.count("\n") != rows - 1 or text.count(SEPARATOR) != rows * (parts - 1):
        raise Unreadable(f"{rows} keys, a line break or a separator in one")
    pieces = pl.Series(text.replace("\n", SEPARATOR).split(SEPARATOR))
    return pl.DataFrame({n: pieces.gather_every(parts, i) for i, n in enumerate(names)})


def _hash(keys: pl.DataFrame) -> pl.Series:
    """A 64-bit hash of each row's key. Only compared within this process: polars' hash is
    not stable across versions, and is never stored."""
    return keys.select(pl.struct(keys.columns).hash(HASH_SEED)).to_series()


def _marked(rows: int, indexes: pl.Series) -> pl.Series:
    """A mask of `rows`, true at `indexes`."""
    return pl.repeat(False, rows, dtype=pl.Boolean, eager=True).scatter(indexes, True)
