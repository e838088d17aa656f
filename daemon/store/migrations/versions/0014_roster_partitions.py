"""PostgreSQL: the roster tables partitioned by tenant (LIST on tenant_id)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 18:00:00.000000

A district's first import then writes its records into a table of its own without an index,
builds the indexes once and attaches the table as the tenant's partition
(`daemon/store/partitions.py`): inserting 700,000 enrollments through two b-trees row by row
took 5-7 s, building them afterwards takes about 1 s. Downstream readers see the same tables,
columns and indexes. SQLite: nothing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

ROSTER = ("schools", "teachers", "students", "sections", "section_teachers", "enrollments")


def _indexes(table: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The table's primary key columns and its other indexes (name, definition)."""
    bind = op.get_bind()
    key = bind.execute(
        sa.text(
            "SELECT a.attname FROM pg_index i"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
            " WHERE i.indrelid = CAST(:t AS regclass) AND i.indisprimary"
            " ORDER BY array_position(i.indkey, a.attnum)"
        ),
        {"t": table},
    ).scalars()
    others = bind.execute(
        sa.text(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE i.indrelid = CAST(:t AS regclass) AND NOT i.indisprimary ORDER BY c.relname"
        ),
        {"t": table},
    ).all()
    return list(key), [(name, definition) for name, definition in others]


def _rebuild(table: str, *, partitioned: bool) -> None:
    """Move `table` into a new table of the same name, columns, key and indexes,
    partitioned by tenant (one partition for each tenant it holds) or not."""
    bind = op.get_bind()
    key, indexes = _indexes(table)
    old = f"{table}_before_0014"
    op.execute(f"ALTER TABLE {table} RENAME TO {old}")
    op.execute(f"ALTER INDEX pk_{table} RENAME TO pk_{old}")
    for name, _ in indexes:
        op.execute(f"ALTER INDEX {name} RENAME TO {name}_before_0014")
    tail = " PARTITION BY LIST (tenant_id)" if partitioned else ""
    op.execute(f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS){tail}")
    if partitioned:
        tenants = bind.execute(sa.text(f"SELECT DISTINCT tenant_id FROM {old}")).scalars()  # noqa: S608
        for tenant_id in tenants:
            op.execute(
                f"CREATE TABLE {table}_t{int(tenant_id)} PARTITION OF {table}"
                f" FOR VALUES IN ({int(tenant_id)})"
            )
    op.execute(f"INSERT INTO {table} SELECT * FROM {old}")  # noqa: S608
    # The key and indexes after the rows: built once rather than grown row by row.
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY ({', '.join(key)})")
    for _, definition in indexes:
        # pg_get_indexdef names the table (ON ONLY for a partitioned one): now the new one.
        op.execute(definition.replace(" ON ONLY ", " ON "))
    op.execute(f"DROP TABLE {old}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in ROSTER:
        _rebuild(table, partitioned=True)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in ROSTER:
        _rebuild(table, partitioned=False)
