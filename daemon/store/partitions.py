"""A tenant's own partition of a roster table on PostgreSQL (migration 0014), written whole.

The first records of a tenant go into a new table without an index; its primary key and
indexes are built once, then it is attached as the tenant's partition, all in the import's
transaction: a rollback leaves no trace of it. Building an index over rows already written is
several times cheaper than growing it row by row (700,000 enrollments: about 2 s, not 5-7 s).

Attaching takes a SHARE UPDATE EXCLUSIVE lock on the parent table until the commit, so two
tenants' first imports finish one after the other; reads and other tenants' imports go on.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from daemon.errors import StoreError

# For the index builds of one first import (server memory, released at the commit).
MAINTENANCE_WORK_MEM = "256MB"
# Of the new partition's first statistics: a sample of 3,000 rows, not 30,000 (0.5 s less on
# a 100,000-student district). They plan the next imports' joins, which need row counts and
# key spreads, not fine histograms; autovacuum's next analyze takes the server's default.
STATISTICS_TARGET = 10


def partition_name(table: sa.Table, tenant_id: int) -> str:
    return f"{table.name}_t{int(tenant_id)}"


def needs_partition(conn: Connection, table: sa.Table, tenant_id: int) -> bool:
    """Whether `table` is partitioned and the tenant has no partition of it yet. False on a
    table that is not partitioned (a schema before 0014): there is nothing to create."""
    row = conn.execute(
        sa.text(
            "SELECT c.relkind = 'p', to_regclass(:part) IS NOT NULL"
            " FROM pg_class c WHERE c.oid = CAST(:t AS regclass)"
        ),
        {"t": table.name, "part": partition_name(table, tenant_id)},
    ).one()
    return bool(row[0]) and not row[1]


def fill_new(conn: Connection, table: sa.Table, tenant_id: int, rows: sa.Select[Any]) -> None:
    """Create the tenant's partition of `table` from `rows` (its columns, in table order)."""
    part = partition_name(table, tenant_id)
    conn.execute(sa.text(f"CREATE TABLE {part} (LIKE {table.name} INCLUDING DEFAULTS)"))
    target = sa.table(part, *(sa.column(c.name) for c in table.columns))
    conn.execute(target.insert().from_select([c.name for c in table.columns], rows))
    conn.execute(sa.text(f"SET LOCAL maintenance_work_mem = '{MAINTENANCE_WORK_MEM}'"))
    key = ", ".join(c.name for c in table.primary_key.columns)
    conn.execute(sa.text(f"ALTER TABLE {part} ADD PRIMARY KEY ({key})"))
    for unique, using in _indexes(conn, table):
        conn.execute(sa.text(f"CREATE {unique}INDEX ON {part} {using}"))
    # The indexes match the parent's, so attaching adopts them instead of building its own.
    conn.execute(
        sa.text(f"ALTER TABLE {table.name} ATTACH PARTITION {part} FOR VALUES IN ({tenant_id})")
    )
    # Statistics now, not at autovacuum's next round: a district often sends its files again
    # at once, and that diff is planned on them (without: 1.1 s for the enrollments' join
    # instead of 0.7 s, through a bitmap scan planned for 3,600 rows).
    conn.execute(sa.text(f"SET LOCAL default_statistics_target = {STATISTICS_TARGET}"))
    conn.execute(sa.text(f"ANALYZE {part}"))
    conn.execute(sa.text("SET LOCAL default_statistics_target TO DEFAULT"))


_ON_PARENT = re.compile(r"^CREATE (UNIQUE )?INDEX \S+ ON ONLY \S+ (USING .*)$")


def _indexes(conn: Connection, table: sa.Table) -> list[tuple[str, str]]:
    """The parent's indexes other than the primary key: ("UNIQUE " or "", "USING …")."""
    definitions = conn.execute(
        sa.text(
            "SELECT pg_get_indexdef(indexrelid) FROM pg_index"
            " WHERE indrelid = CAST(:t AS regclass) AND NOT indisprimary"
        ),
        {"t": table.name},
    ).scalars()
    indexes = []
    for definition in definitions:
        match = _ON_PARENT.match(definition)
        if match is None:
            raise StoreError(f"unexpected index on {table.name}: {definition}")
        indexes.append((match.group(1) or "", match.group(2)))
    return indexes
