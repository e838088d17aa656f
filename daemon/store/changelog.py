"""The change log, read back: what an undo restores, and the undo's own entry in it.

The change log is `import_changes` (docs/schema.md), written by `kept_changes.keep` in each
import's transaction before its apply changes the roster: every record and link an applied
import updated, reactivated or deactivated, with the value before of each field it changed.
What an import added is not copied there when the roster tells it: a record's
`created_import_id` never changes, so "did not exist before import N" is `created_import_id =
N`. Together they give the state before N of everything N touched (exists? active? every
field), which is all an undo needs: a second table would hold the same facts twice.

An undo of imports N₁ > N₂ > … > Nₖ (newest first) is planned in temporary tables: the touched
records' current state, then each import's change reversed in turn, newest first (so each
reversal meets the state that import left). The diff of that target against the roster is
the undo's plan and its own change-log entry (so undoing an undo is a redo); applying it is
one UPDATE per entity. Nothing is ever inserted or deleted: a record that did not exist is
deactivated, as the roster's readers expect ("records are never deleted").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from daemon.roster.entities import ENTITIES, Entity
from daemon.roster.plan import EntityChanges, Plan
from daemon.store.kept_changes import KEY_COLUMNS, fields_json, record_label
from daemon.store.staging import DEACTIVATE, REACTIVATE, UPDATE
from daemon.store.tables import import_changes, roster_tables

# The kinds of change a record's log row can reverse (adds: `created_import_id`).
REVERSIBLE = (UPDATE, REACTIVATE, DEACTIVATE)

_META = sa.MetaData()


def _target_table(entity: Entity) -> sa.Table:
    live = roster_tables[entity.name]
    return sa.Table(
        f"undo_{entity.name}",
        _META,
        *(sa.Column(c, live.c[c].type) for c in entity.columns),
        sa.Column("active", sa.Boolean),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )


TARGET = {e.name: _target_table(e) for e in ENTITIES}


def _padded(entity: Entity, columns: Any) -> list[sa.ColumnElement[Any]]:
    """A roster key as import_changes writes it: its parts, then '' up to three."""
    parts: list[sa.ColumnElement[Any]] = [columns[k] for k in entity.key]
    return parts + [sa.literal("") for _ in range(len(KEY_COLUMNS) - len(parts))]


class Undo:
    """The undo of `undone` (import ids, newest first) for one tenant, in `conn`'s
    transaction: `plan()`, then `keep()` its change list and `apply()` it, then `close()`."""

    def __init__(self, conn: Connection, tenant_id: int, undone: list[int]) -> None:
        self.conn, self.tenant_id, self.undone = conn, tenant_id, undone
        self.postgres = conn.dialect.name == "postgresql"
        for table in TARGET.values():
            if not self.postgres:
                conn.execute(sa.text(f"DROP TABLE IF EXISTS temp.{table.name}"))
            table.create(conn)

    def close(self) -> None:
        """Drop the tables (PostgreSQL drops them at commit by itself)."""
        if not self.postgres:
            for table in TARGET.values():
                self.conn.execute(sa.text(f"DROP TABLE IF EXISTS temp.{table.name}"))

    # -- the target ----------------------------------------------------------------------------

    def plan(self) -> Plan:
        """What the undo changes, per entity; the target state is left in the tables."""
        entities = {}
        for entity in ENTITIES:
            self._touched(entity)
            for import_id in self.undone:
                self._reverse(entity, import_id)
            entities[entity.name] = self._counts(entity)
        return Plan(entities, first_import=False)

    def _same(self, entity: Entity, table: Any) -> list[sa.ColumnElement[bool]]:
        live = roster_tables[entity.name]
        return [live.c.tenant_id == self.tenant_id, *(live.c[k] == table.c[k] for k in entity.key)]

    def _touched(self, entity: Entity) -> None:
        """Copy the current state of every record the undone imports touched."""
        live, kept, target = roster_tables[entity.name], import_changes.c, TARGET[entity.name]
        logged = sa.select(*(kept[k] for k in KEY_COLUMNS)).where(
            kept.import_id.in_(self.undone),
            kept.entity == entity.name,
            kept.kind.in_(REVERSIBLE),
        )
        created = sa.select(*_padded(entity, live.c)).where(
            live.c.tenant_id == self.tenant_id, live.c.created_import_id.in_(self.undone)
        )
        touched = sa.union(logged, created).subquery()
        on = sa.and_(
            live.c.tenant_id == self.tenant_id,
            *(live.c[k] == touched.c[c] for k, c in zip(entity.key, KEY_COLUMNS, strict=False)),
        )
        rows = sa.select(*(live.c[c] for c in entity.columns), live.c.active).select_from(
            touched.join(live, on)
        )
        self.conn.execute(target.insert().from_select([*entity.columns, "active"], rows))

    def _before(self, entity: Entity, name: str) -> tuple[Any, Any]:
        """(whether the log row changed field `name`, its value before) as SQL."""
        fields = import_changes.c.fields
        if self.postgres:
            doc = sa.cast(fields, sa.JSON)
            changed = sa.func.json_typeof(sa.func.json_extract_path(doc, name)) == "array"
            value: Any = sa.func.json_extract_path_text(doc, name, "0")
            kind = roster_tables[entity.name].c[name].type
            if not isinstance(kind, sa.Text):
                value = sa.cast(value, kind)
            return changed, value
        # SQLite's json_extract gives the SQL value back (text, integer, NULL): the roster
        # stores dates as ISO text, which is what the log has.
        changed = sa.func.json_type(fields, f"$.{name}") == "array"
        return changed, sa.func.json_extract(fields, f"$.{name}[0]")

    def _reverse(self, entity: Entity, import_id: int) -> None:
        """Take the target back from after `import_id` to before it."""
        target, kept = TARGET[entity.name], import_changes.c
        values: dict[str, Any] = {}
        for f in entity.fields:
            changed, before = self._before(entity, f)
            values[f] = sa.case((changed, before), else_=target.c[f])
        values["active"] = sa.case(
            (kept.kind == REACTIVATE, sa.false()),
            (kept.kind == DEACTIVATE, sa.true()),
            else_=target.c.active,
        )
        match = [target.c[k] == kept[c] for k, c in zip(entity.key, KEY_COLUMNS, strict=False)]
        self.conn.execute(
            target.update()
            .where(
                kept.import_id == import_id,
                kept.entity == entity.name,
                kept.kind.in_(REVERSIBLE),
                *match,
            )
            .values(**values)
        )
        live = roster_tables[entity.name]
        created = sa.exists().where(
            *self._same(entity, target), live.c.created_import_id == import_id
        )
        self.conn.execute(target.update().where(created).values(active=False))

    # -- the diff ------------------------------------------------------------------------------

    def _diff(self, entity: Entity) -> tuple[Any, dict[str, Any], Any]:
        """The join of target and roster, each field's "differs", and the change's kind."""
        live, target = roster_tables[entity.name], TARGET[entity.name]
        joined = target.join(live, sa.and_(*self._same(entity, target)))
        differs = {f: live.c[f].is_distinct_from(target.c[f]) for f in entity.fields}
        kind = sa.case(
            (live.c.active & ~target.c.active, DEACTIVATE),
            (~live.c.active & target.c.active, REACTIVATE),
            (sa.or_(sa.false(), *differs.values()), UPDATE),
        )
        return joined, differs, kind

    def _counts(self, entity: Entity) -> EntityChanges:
        live = roster_tables[entity.name]
        joined, differs, kind = self._diff(entity)
        others = [d for f, d in differs.items() if f != "extra"]
        extra_only = sa.not_(sa.or_(sa.false(), *others))
        changes = (
            sa.select(
                kind.label("kind"),
                sa.case((extra_only, 1), else_=0).label("extra_only"),
                *(sa.case((d, 1), else_=0).label(f"d_{f}") for f, d in differs.items()),
            )
            .select_from(joined)
            .subquery()
        )
        summary = (
            sa.select(
                changes.c.kind,
                sa.func.count(),
                sa.func.sum(changes.c.extra_only),
                *(sa.func.sum(changes.c[f"d_{f}"]) for f in entity.fields),
            )
            .where(changes.c.kind.is_not(None))
            .group_by(changes.c.kind)
        )
        counts = dict.fromkeys(REVERSIBLE, 0)
        extra, fields = 0, {}
        for row in self.conn.execute(summary):
            counts[row[0]] = row[1]
            if row[0] == UPDATE:
                extra = int(row[2] or 0)
                fields = {f: int(n or 0) for f, n in zip(entity.fields, row[3:], strict=True)}
        active_before = self.conn.execute(
            sa.select(sa.func.count()).where(live.c.tenant_id == self.tenant_id, live.c.active)
        ).scalar_one()
        return EntityChanges(
            active_before=active_before,
            updated=counts[UPDATE],
            reactivated=counts[REACTIVATE],
            deactivated=counts[DEACTIVATE],
            unchanged=max(0, active_before - counts[DEACTIVATE] - counts[UPDATE]),
            extra_only=extra,
            field_changes={f: n for f, n in fields.items() if n},
        )

    # -- keeping and applying --------------------------------------------------------------------

    def keep(self, import_id: int) -> None:
        """The undo's own change list (before the roster changes: the before values are the
        roster's), in the change log's format: undoing it is a redo."""
        conn = self.conn
        conn.execute(import_changes.delete().where(import_changes.c.import_id == import_id))
        for entity in ENTITIES:
            live = roster_tables[entity.name]
            joined, differs, kind = self._diff(entity)
            target = TARGET[entity.name]
            fields: Any = sa.null()
            if entity.fields:
                fields = fields_json(entity, live.c, target.c, differs, self.postgres)
            rows = sa.select(
                sa.literal(import_id),
                sa.literal(entity.name),
                kind,
                *_padded(entity, live.c),
                record_label(entity, live.c, self.tenant_id),
                fields,
                sa.null(),
                sa.null(),
            ).select_from(joined)
            changed = rows.where(kind.is_not(None))
            names = ["import_id", "entity", "kind", *KEY_COLUMNS, "label", "fields", "line"]
            conn.execute(import_changes.insert().from_select([*names, "known"], changed))

    def apply(self, import_id: int, now: datetime) -> None:
        """Make the roster the target: every field and active state of each touched record."""
        for entity in ENTITIES:
            live, target = roster_tables[entity.name], TARGET[entity.name]
            _, differs, _ = self._diff(entity)
            moved = sa.or_(live.c.active.is_distinct_from(target.c.active), *differs.values())
            self.conn.execute(
                live.update()
                .where(*self._same(entity, target), moved)
                .values(
                    active=target.c.active,
                    **{f: target.c[f] for f in entity.fields},
                    changed_import_id=import_id,
                    changed_at=now,
                )
            )
