"""Staging an upload in temporary tables, diffing it against the roster, and applying the diff.

Everything happens inside the caller's transaction: the plan is computed before anything is
written, and applying is a few set-based statements, so a crash leaves the previous roster as
it was. One full outer join per entity finds what changes; the counts and the apply then read
only those changed rows. PostgreSQL is fed with COPY, SQLite with batched inserts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from daemon.roster.entities import ENTITIES, SECTION_TEACHERS, SECTIONS, STUDENTS, TEACHERS, Entity
from daemon.roster.plan import EntityChanges, Plan
from daemon.store.school_shares import school_deactivations
from daemon.store.tables import roster_tables

BATCH_ROWS = 20_000
# Hash joins over a big district's enrollments spill to disk with PostgreSQL's default 4 MB.
WORK_MEM = "256MB"
ADD, UPDATE, REACTIVATE, DEACTIVATE = "add", "update", "reactivate", "deactivate"
EXTRA_ONLY = "extra_only"  # updates that change nothing but the extra columns
DEACTIVATED_SKIPPED = "deactivated_skipped"
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
        sa.Column("held", sa.Boolean),
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

_TABLES = (*STAGE.values(), *SKIPPED.values(), *REPEATED.values(), *CHANGES.values())


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
    """One upload's records in temporary tables: a SnapshotSink for the validator."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.postgres = conn.dialect.name == "postgresql"
        self._writers = {e.name: _Writer(self, STAGE[e.name]) for e in ENTITIES}
        self._skipped = {e.name: _Writer(self, SKIPPED[e.name]) for e in ENTITIES}
        self._dropped = dict.fromkeys(self._writers, 0)  # repeated rows, dropped
        self._dropped_held = dict.fromkeys(self._writers, 0)  # of which held
        self._empty: set[str] = set()  # entities the tenant has no rows of yet
        if self.postgres:
            conn.execute(sa.text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
        for table in _TABLES:
            if not self.postgres:
                conn.execute(sa.text(f"DROP TABLE IF EXISTS temp.{table.name}"))
            table.create(conn)

    def close(self) -> None:
        """Drop the tables (PostgreSQL drops them at commit by itself)."""
        if not self.postgres:
            for table in _TABLES:
                self.conn.execute(sa.text(f"DROP TABLE IF EXISTS temp.{table.name}"))

    # -- SnapshotSink -----------------------------------------------------------------------

    def writer(self, entity: Entity) -> _Writer:
        return self._writers[entity.name]

    def skipped(self, entity: Entity) -> _Writer:
        return self._skipped[entity.name]

    def load_table(self, entity: Entity, records: Any) -> None:
        """A whole pyarrow table of records at once (`staging_load`: imports pyarrow)."""
        from daemon.store import staging_load

        writer = self._writers[entity.name]
        staging_load.load(self.conn, writer.table, records, entity.key)
        writer.written += records.num_rows
        writer.held += sum(records.column("held").to_pylist())

    def _index_sqlite(self, entity: Entity) -> None:
        """SQLite joins and groups through indexes only: without one on the stage's key, the
        diff would be quadratic and the duplicate search a sort of every row. With `held`
        and `line` in it, the index alone answers both for enrollments, in key order, so the
        roster's primary key is read in order too (three times faster than in file order)."""
        if not self.postgres:
            stage, keys = STAGE[entity.name].name, ", ".join((*entity.key, "held", "line"))
            self.conn.execute(
                sa.text(f"CREATE INDEX IF NOT EXISTS temp.{stage}_key ON {stage} ({keys})")
            )

    def duplicates(self, entity: Entity) -> Iterator[tuple[int, int]]:
        """Find rows repeating an earlier row's key: yield (line, first line) of each, then
        drop them all. One pass over the stage finds the repeated keys (usually none); only
        their rows are read again. Streamed: an SIS that writes every enrollment twice
        doubles a district's rows, and nothing here grows with them in memory."""
        self.flush()
        self._index_sqlite(entity)
        stage, repeated = STAGE[entity.name], REPEATED[entity.name]
        keys = [stage.c[k] for k in entity.key]
        self.conn.execute(
            repeated.insert().from_select(
                [*entity.key, "first"],
                sa.select(*keys, sa.func.min(stage.c.line))
                .group_by(*keys)
                .having(sa.func.count() > 1),
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
        for writer in (*self._writers.values(), *self._skipped.values()):
            writer.flush()

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
        `plan`): then the diff was skipped, and every fresh staged row is an add."""
        return entity.name in self._empty

    # -- plan and apply ---------------------------------------------------------------------

    def plan(self, tenant_id: int, *, first_import: bool) -> Plan:
        """Diff the staged snapshot against the tenant's roster; nothing is written to it."""
        self.flush()
        entities = {e.name: self._diff(e, tenant_id) for e in ENTITIES}
        known = {name: t for name, t in CHANGES.items() if name not in self._empty}
        schools = school_deactivations(self.conn, tenant_id, known)
        return Plan(entities, first_import, schools)

    def _diff(self, entity: Entity, tenant_id: int) -> EntityChanges:
        live, changes = roster_tables[entity.name], CHANGES[entity.name]
        writer = self._writers[entity.name]
        held = writer.held - self._dropped_held[entity.name]
        fresh = writer.written - self._dropped[entity.name] - held
        if not self.conn.execute(
            sa.select(sa.literal(1)).where(live.c.tenant_id == tenant_id).limit(1)
        ).first():
            # Nothing of this tenant's yet (a first import): every fresh staged row is new,
            # and applying is a plain copy from the stage.
            self._empty.add(entity.name)
            return EntityChanges(added=fresh, held=held, held_new=held)
        for select in self._changes(entity, tenant_id):
            self.conn.execute(changes.insert().from_select(list(changes.c.keys()), select))
        counts = dict.fromkeys(
            (ADD, UPDATE, REACTIVATE, DEACTIVATE, EXTRA_ONLY, DEACTIVATED_SKIPPED), 0
        )
        field_changes = dict.fromkeys(entity.fields, 0)
        flags = [changes.c[f"changed_{f}"] for f in entity.fields]
        roster_flags = [changes.c[f"changed_{f}"] for f in entity.fields if f != "extra"]
        extra_only = sa.not_(sa.or_(sa.false(), *roster_flags))
        summary = sa.select(
            changes.c.action,
            sa.func.count(),
            sa.func.sum(sa.case((extra_only, 1), else_=0)),
            *(sa.func.sum(sa.case((flag, 1), else_=0)) for flag in flags),
        ).group_by(changes.c.action)
        for row in self.conn.execute(summary):
            counts[row[0]] = row[1]
            if row[0] == UPDATE:
                counts[EXTRA_ONLY] = int(row[2] or 0)
                field_changes = {
                    f: int(n or 0) for f, n in zip(entity.fields, row[3:], strict=True)
                }
        if counts[DEACTIVATE] and self._skipped[entity.name].written:
            counts[DEACTIVATED_SKIPPED] = self._named_by_skipped(entity)
        held_new = self._held_new(entity, tenant_id) if held else 0
        active_before = self.conn.execute(
            sa.select(sa.func.count()).where(live.c.tenant_id == tenant_id, live.c.active)
        ).scalar_one()
        return EntityChanges(
            active_before=active_before,
            added=counts[ADD],
            updated=counts[UPDATE],
            reactivated=counts[REACTIVATE],
            deactivated=counts[DEACTIVATE],
            deactivated_skipped=counts[DEACTIVATED_SKIPPED],
            extra_only=counts[EXTRA_ONLY],
            unchanged=fresh - counts[ADD] - counts[UPDATE] - counts[REACTIVATE],
            held=held,
            held_new=held_new,
            field_changes={f: n for f, n in field_changes.items() if n},
        )

    def _held_new(self, entity: Entity, tenant_id: int) -> int:
        """Held rows whose record the roster does not have: "kept as it is" would be untrue,
        they are not imported at all."""
        live, stage = roster_tables[entity.name], STAGE[entity.name]
        known = sa.exists().where(
            live.c.tenant_id == tenant_id, *(live.c[k] == stage.c[k] for k in entity.key)
        )
        query = sa.select(sa.func.count()).where(stage.c.held, ~known)
        return int(self.conn.execute(query).scalar_one())

    def _named_by_skipped(self, entity: Entity) -> int:
        """How many records to deactivate a skipped row names. A person by id alone, without
        the school: a student whose row names an unknown school is still that student. Other
        records by their whole key (section ids repeat from school to school)."""
        changes, skipped = CHANGES[entity.name], SKIPPED[entity.name]
        ids = entity.key[1:] if entity in (STUDENTS, TEACHERS) else entity.key
        if not self.postgres:
            columns = ", ".join(ids)
            self.conn.execute(
                sa.text(
                    f"CREATE INDEX IF NOT EXISTS temp.{skipped.name}_ids"
                    f" ON {skipped.name} ({columns})"
                )
            )
        named = sa.exists().where(*(skipped.c[k] == changes.c[k] for k in ids))
        query = sa.select(sa.func.count()).where(changes.c.action == DEACTIVATE, named)
        return int(self.conn.execute(query).scalar_one())

    def _changes(self, entity: Entity, tenant_id: int) -> list[sa.Select[Any]]:
        """The queries that find the changed rows: records to add, update, reactivate (from
        the stage) and to deactivate (from the roster)."""
        live, stage = roster_tables[entity.name], STAGE[entity.name]
        fresh = sa.not_(stage.c.held)
        if self.postgres:
            # One full outer hash join: a single pass over each side.
            live = sa.select(live).where(live.c.tenant_id == tenant_id).subquery()  # type: ignore[assignment]
            on = sa.and_(*(live.c[k] == stage.c[k] for k in entity.key))
            source: Any = stage.join(live, on, full=True)
        else:
            # SQLite joins through indexes, so look each staged row up by the roster's key, then
            # each active roster row up by the stage's key.
            self._index_sqlite(entity)
            on = sa.and_(
                live.c.tenant_id == tenant_id, *(live.c[k] == stage.c[k] for k in entity.key)
            )
            source = stage.outerjoin(live, on)
        missing, gone = live.c.tenant_id.is_(None), stage.c[entity.key[0]].is_(None)
        # A dropped optional value leaves the roster's own in place.
        staged = {
            f: sa.case((stage.c.kept.contains(f",{f},") & ~missing, live.c[f]), else_=stage.c[f])
            if f in entity.keepable
            else stage.c[f]
            for f in entity.fields
        }
        differs = [live.c[f].is_distinct_from(staged[f]) for f in entity.fields]
        upsert = ~gone & fresh & (missing | ~live.c.active | sa.or_(sa.false(), *differs))
        action = sa.case(
            (missing, ADD), (gone, DEACTIVATE), (~live.c.active, REACTIVATE), else_=UPDATE
        )
        keys_out = [sa.func.coalesce(stage.c[k], live.c[k]) for k in entity.key]
        values = [*keys_out, *staged.values(), action, *differs]
        if self.postgres:
            vanished = gone & live.c.active & ~_held_section(entity, live)
            return [sa.select(*values).select_from(source).where(upsert | vanished)]
        table = roster_tables[entity.name]
        in_stage = sa.exists().where(*(stage.c[k] == table.c[k] for k in entity.key))
        deactivate = sa.select(
            *(table.c[k] for k in entity.key),
            *(sa.null() for _ in entity.fields),
            sa.literal(DEACTIVATE),
            *(sa.null() for _ in entity.fields),
        ).where(
            table.c.tenant_id == tenant_id,
            table.c.active,
            ~in_stage,
            ~_held_section(entity, table),
        )
        return [sa.select(*values).select_from(source).where(upsert), deactivate]

    def apply(self, tenant_id: int, import_id: int, now: datetime) -> None:
        """Make the roster equal the staged snapshot (held records stay as they are)."""
        for entity in ENTITIES:
            self._apply(entity, tenant_id, import_id, now)

    def _apply(self, entity: Entity, tenant_id: int, import_id: int, now: datetime) -> None:
        live, changes = roster_tables[entity.name], CHANGES[entity.name]
        stamp = {"changed_import_id": import_id, "changed_at": now}
        same = [live.c.tenant_id == tenant_id, *(live.c[k] == changes.c[k] for k in entity.key)]
        self.conn.execute(
            live.update().where(*same, changes.c.action == DEACTIVATE).values(active=False, **stamp)
        )
        self.conn.execute(
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
        source = STAGE[entity.name] if entity.name in self._empty else changes
        added = sa.not_(source.c.held) if source is not changes else changes.c.action == ADD
        rows = sa.select(
            *(source.c[c] for c in entity.columns),
            *(sa.literal(v, live.c[k].type) for k, v in literal.items()),
        ).where(added)
        if not self.postgres:
            # SQLite keeps these tables clustered by key: in key order each row lands at the
            # b-tree's end. (PostgreSQL's sort costs more than its index saves.)
            rows = rows.order_by(*(source.c[k] for k in entity.key))
        self.conn.execute(live.insert().from_select([*entity.columns, *literal], rows))


def _held_section(entity: Entity, live: Any) -> sa.ColumnElement[bool]:
    """Whether a roster row is a teacher link of a section held in the stage. A held section
    row is not trusted in any column, its teacher columns included: the section keeps all
    its current teachers, also those the broken row no longer names, but not one who is
    gone from teachers.csv (and so deactivated): no active link to an inactive teacher."""
    if entity is not SECTION_TEACHERS:
        return sa.false()
    sections, teachers = STAGE[SECTIONS.name], STAGE[TEACHERS.name]
    return sa.and_(
        sa.exists().where(
            sections.c.held,
            sections.c.school_id == live.c.school_id,
            sections.c.section_id == live.c.section_id,
        ),
        # in teachers.csv under any school: a section may have a teacher from another
        sa.exists().where(teachers.c.teacher_id == live.c.teacher_id),
    )
