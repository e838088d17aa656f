"""Applying a plan: the roster made equal to the staged snapshot, held records as they are.

Set-based statements inside the caller's transaction that read only the diff's changed rows
(`changes_*`), so an unchanged record is never written; a crash leaves the roster as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from daemon import testpoint
from daemon.roster.entities import ENTITIES, Entity
from daemon.store import partitions
from daemon.store.staging import ADD, CHANGES, DEACTIVATE, REACTIVATE, STAGE, UPDATE, Stage
from daemon.store.tables import roster_tables


def apply(stage: Stage, tenant_id: int, import_id: int, now: datetime) -> None:
    """Make the roster equal the staged snapshot (held records stay as they are)."""
    for entity in ENTITIES:
        _apply(stage, entity, tenant_id, import_id, now)


def _apply(stage: Stage, entity: Entity, tenant_id: int, import_id: int, now: datetime) -> None:
    live, changes = roster_tables[entity.name], CHANGES[entity.name]
    stamp = {"changed_import_id": import_id, "changed_at": now}
    same = [live.c.tenant_id == tenant_id, *(live.c[k] == changes.c[k] for k in entity.key)]
    stage.conn.execute(
        live.update().where(*same, changes.c.action == DEACTIVATE).values(active=False, **stamp)
    )
    stage.conn.execute(
        live.update()
        .where(*same, changes.c.action.in_((UPDATE, REACTIVATE)))
        .values(active=True, **{f: changes.c[f] for f in entity.fields}, **stamp)
    )
    literal = {
        "tenant_id": tenant_id,
        "active": True,
        "created_import_id": import_id,
        "created_at": now,
        **stamp,
    }
    new = stage.new_to_tenant(entity)
    source = STAGE[entity.name] if new else changes
    added = sa.not_(source.c.held) if new else changes.c.action == ADD
    values = {
        **{c: source.c[c] for c in entity.columns},
        **{k: sa.literal(v, live.c[k].type) for k, v in literal.items()},
    }
    if new and stage.postgres and partitions.needs_partition(stage.conn, live, tenant_id):
        rows = sa.select(*(values[c.name] for c in live.columns)).where(added)
        partitions.fill_new(stage.conn, live, tenant_id, rows)
        return
    # In key order each row lands at the primary key's end: SQLite keeps these tables
    # clustered by it, and PostgreSQL's b-tree stays in cache.
    rows = sa.select(*values.values()).where(added).order_by(*(source.c[k] for k in entity.key))
    insert = live.insert().from_select(list(values), rows)
    if new and not stage.postgres and _empty(stage.conn, live):
        with _indexes_built_after(stage.conn, live):
            stage.conn.execute(insert)
        return
    stage.conn.execute(insert)


def _empty(conn: Connection, table: sa.Table) -> bool:
    return conn.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first() is None


@contextmanager
def _indexes_built_after(conn: Connection, table: sa.Table) -> Iterator[None]:
    """SQLite, a table no district has rows in yet (mostly the first district's first import):
    its indexes dropped for the insert and built again after it, from the same statements,
    in the import's transaction. Building one over rows already written sorts them once;
    700,000 enrollments inserted in key order through the index by student took 2 s more.
    A table with rows of other districts keeps its indexes: rebuilding would sort theirs."""
    indexes = conn.execute(
        sa.text(
            "SELECT name, sql FROM sqlite_master"
            " WHERE type = 'index' AND tbl_name = :table AND sql IS NOT NULL"
        ),
        {"table": table.name},
    ).all()
    quote = conn.dialect.identifier_preparer.quote
    for name, _ in indexes:
        conn.execute(sa.text(f"DROP INDEX {quote(name)}"))
    testpoint.reached("indexes-dropped")
    yield
    for _, sql in indexes:
        conn.execute(sa.text(sql))
