"""PostgreSQL: the roster tables partitioned by tenant (LIST on tenant_id)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 18:00:00.000000

A district's first import then writes its records into a table of its own without an index,
builds the indexes once and attaches the table as the tenant's partition
(`daemon/store/partitions.py`): inserting 700,000 enrollments through two b-trees row by row
took 5-7 s, building them afterwards takes about 1 s. Downstream readers see the same tables,
columns and indexes, with their grants, owner and comments. SQLite: nothing changes.

It refuses to start, saying what to do, when something downstream is tied to the old tables
(views, foreign keys, triggers, row security policies, publications) or the server has too
few lock slots for one transaction holding every district's new partition and its indexes.
"""

from __future__ import annotations

import math
from typing import Any

import sqlalchemy as sa
from alembic import op

from daemon.errors import StoreError

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

ROSTER = ("schools", "teachers", "students", "sections", "section_teachers", "enrollments")
# Of the server's shared lock table (max_locks_per_transaction x connections) the migration
# may count on; the other sessions keep the rest.
LOCK_SHARE = 0.75


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


def _scalars(query: str, **params: Any) -> list[Any]:
    return list(op.get_bind().execute(sa.text(query), params).scalars())


def _refuse_what_would_be_lost() -> None:
    """What downstream systems tie to the old table itself (views, foreign keys, triggers,
    policies, publications) would be lost or stop the drop: name it, change nothing."""
    found = []
    for table in ROSTER:
        views = _scalars(
            "SELECT DISTINCT CAST(r.ev_class AS regclass)::text FROM pg_depend d"
            " JOIN pg_rewrite r ON r.oid = d.objid"
            " WHERE d.refobjid = CAST(:t AS regclass) AND r.ev_class <> CAST(:t AS regclass)",
            t=table,
        )
        found += [f"view {v} reads {table}" for v in views]
        policies = _scalars(
            "SELECT polname FROM pg_policy WHERE polrelid = CAST(:t AS regclass)", t=table
        )
        found += [f"row security policy {p} on {table}" for p in policies]
        publications = _scalars(
            "SELECT p.pubname FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid"
            " WHERE r.prrelid = CAST(:t AS regclass)",
            t=table,
        )
        found += [f"publication {p} has {table}" for p in publications]
        keys = _scalars(
            "SELECT conname || ' of ' || CAST(conrelid AS regclass)::text FROM pg_constraint"
            " WHERE confrelid = CAST(:t AS regclass)",
            t=table,
        )
        found += [f"foreign key {k} references {table}" for k in keys]
        triggers = _scalars(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = CAST(:t AS regclass)"
            " AND NOT tgisinternal",
            t=table,
        )
        found += [f"trigger {t} on {table}" for t in triggers]
    if found:
        raise StoreError(
            "migration 0014 (one partition per district) re-creates the roster tables and "
            f"cannot carry these over: {'; '.join(found)}. Drop them, run `rosterdrop db "
            "upgrade`, then create them again."
        )


def locks_needed(districts: int, indexes: int) -> int:
    """Lock slots of the upgrade's one transaction: each district's partition of each table
    and the partition's indexes (`indexes`: of all the roster tables together)."""
    return districts * (len(ROSTER) + indexes)


def _check_lock_room() -> None:
    # Every tenant, not only those with rows: as many or more, without reading the tables.
    districts = int(_scalars("SELECT count(*) FROM tenants")[0])
    indexes = int(
        _scalars(
            "SELECT count(*) FROM pg_index WHERE indrelid = ANY(CAST(:t AS regclass[]))",
            t="{" + ",".join(ROSTER) + "}",
        )[0]
    )
    per_transaction, connections, prepared = (
        int(_scalars(f"SELECT current_setting('{name}')")[0])
        for name in ("max_locks_per_transaction", "max_connections", "max_prepared_transactions")
    )
    room = int(per_transaction * (connections + prepared) * LOCK_SHARE)
    needed = locks_needed(districts, indexes)
    if needed > room:
        setting = math.ceil(needed / LOCK_SHARE / (connections + prepared))
        raise StoreError(
            f"migration 0014 (one partition per district) needs about {needed} lock slots "
            f"for {districts} districts in one transaction; this server has room for {room} "
            f"(max_locks_per_transaction {per_transaction} x {connections + prepared} "
            f"connections). Set max_locks_per_transaction = {setting} or more, restart "
            "PostgreSQL, then run `rosterdrop db upgrade` again."
        )


def _carry_over(old: str, table: str) -> None:
    """The old table's grants, owner and comments onto the new one."""
    bind = op.get_bind()
    grants = bind.execute(
        sa.text(
            "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END,"
            " a.privilege_type, a.is_grantable"
            " FROM pg_class c, aclexplode(c.relacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee"
            " WHERE c.oid = CAST(:t AS regclass) AND a.grantee <> c.relowner"
        ),
        {"t": old},
    ).all()
    for grantee, privilege, grantable in grants:
        option = " WITH GRANT OPTION" if grantable else ""
        op.execute(f"GRANT {privilege} ON {table} TO {grantee}{option}")
    owner = _scalars(
        "SELECT quote_ident(pg_get_userbyid(relowner)) FROM pg_class"
        " WHERE oid = CAST(:t AS regclass)",
        t=old,
    )[0]
    op.execute(f"ALTER TABLE {table} OWNER TO {owner}")
    comments = bind.execute(
        sa.text(
            "SELECT quote_ident(a.attname), quote_literal(d.description), d.objsubid"
            " FROM pg_description d"
            " LEFT JOIN pg_attribute a ON a.attrelid = d.objoid AND a.attnum = d.objsubid"
            " WHERE d.objoid = CAST(:t AS regclass) AND d.classoid = 'pg_class'::regclass"
        ),
        {"t": old},
    ).all()
    for column, description, subid in comments:
        target = f"COLUMN {table}.{column}" if subid else f"TABLE {table}"
        op.execute(f"COMMENT ON {target} IS {description}")  # quoted by the query


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
    _carry_over(old, table)
    op.execute(f"DROP TABLE {old}")
    # Statistics now: the next import's diff is planned on them.
    op.execute(f"ANALYZE {table}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _refuse_what_would_be_lost()
    _check_lock_room()
    for table in ROSTER:
        _rebuild(table, partitioned=True)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _refuse_what_would_be_lost()
    for table in ROSTER:
        _rebuild(table, partitioned=False)
