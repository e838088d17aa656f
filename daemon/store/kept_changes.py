"""The record-level changes of an import, kept for the change browser: what a paused import
would add, update (field by field, before → after), reactivate, deactivate and hold, and what
an applied one did.

They are copied set-based (INSERT … SELECT) from the staging tables while those exist, in
the import's own transaction, so they are always exactly the plan that was paused or
applied. What is kept, and why (docs/schema.md, `import_changes`):
- updates and reactivations with the changed fields' values before and after (the roster
  keeps only the after);
- deactivations: key and name (a later import may bring the record back);
- held rows: their line, and whether the roster has the record;
- adds, except those of an applied import into an entity the tenant had none of (a first
  import: hundreds of thousands of rows the roster already holds, stamped
  `created_import_id`; they are read from there).
"""

from __future__ import annotations

import json
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from daemon.roster.entities import (
    ENROLLMENTS,
    ENTITIES,
    SECTION_TEACHERS,
    STUDENTS,
    TEACHERS,
    Entity,
)
from daemon.roster.plan import Plan
from daemon.store import change_search
from daemon.store.change_search import Matches, kept_matches, roster_matches, term_of
from daemon.store.staging import ADD, CHANGES, DEACTIVATE, REACTIVATE, STAGE, UPDATE, Stage
from daemon.store.tables import import_changes, roster_tables

HELD = "held"
KINDS = (ADD, UPDATE, REACTIVATE, DEACTIVATE, HELD)
KEY_COLUMNS = ("key1", "key2", "key3")
STREAM_ROWS = 2_000  # rows fetched at a time for a download


@dataclass(frozen=True)
class Seek:
    """Where a page starts: after a key (the next page), before one (the previous), or an
    offset from the first record or, `from_end`, back from the last."""

    after: tuple[str, ...] | None = None
    before: tuple[str, ...] | None = None
    offset: int = 0
    from_end: bool = False


@dataclass(frozen=True)
class ChangedRecord:
    """One record in a change list."""

    key: tuple[str, ...]
    label: str
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # changed: before, after
    line: int | None = None  # held rows: the file's line
    known: bool | None = None  # held rows: whether the roster has the record


# -- keeping ---------------------------------------------------------------------------------


def keep(stage: Stage, plan: Plan, tenant_id: int, import_id: int, *, applied: bool) -> None:
    """Replace what is kept of `import_id` by `plan`, which `stage` holds (before an apply
    changes the roster: the before values are read from it)."""
    conn = stage.conn
    forget(conn, import_id)
    for entity in ENTITIES:
        counts = plan.entities[entity.name]
        if counts.held:
            _insert(conn, _held(entity, tenant_id, import_id))
        if stage.new_to_tenant(entity):
            if not applied and counts.added:
                _insert(conn, _staged_adds(entity, tenant_id, import_id, stage))
        elif counts.added + counts.updated + counts.reactivated + counts.deactivated:
            _insert(conn, _diffed(entity, tenant_id, import_id, stage.postgres))


def forget(conn: Connection, import_id: int) -> None:
    conn.execute(import_changes.delete().where(import_changes.c.import_id == import_id))


_INSERTED = ["import_id", "entity", "kind", *KEY_COLUMNS, "label", "fields", "line", "known"]


def _insert(conn: Connection, select: sa.Select[Any]) -> None:
    conn.execute(import_changes.insert().from_select(_INSERTED, select))


def _keys(entity: Entity, columns: Any) -> list[sa.ColumnElement[Any]]:
    parts: list[sa.ColumnElement[Any]] = [sa.func.coalesce(columns[k], "") for k in entity.key]
    return parts + [sa.literal("") for _ in range(len(KEY_COLUMNS) - len(parts))]


def _person(columns: Any) -> sa.ColumnElement[Any]:
    name = sa.func.coalesce(columns.first_name, "") + " " + sa.func.coalesce(columns.last_name, "")
    return sa.func.nullif(sa.func.trim(name), "")


def _label(entity: Entity, columns: Any, tenant_id: int) -> sa.ColumnElement[Any]:
    """The name a district knows a record by; a link by its student's or teacher's name."""
    if entity is ENROLLMENTS or entity is SECTION_TEACHERS:
        other = roster_tables["students" if entity is ENROLLMENTS else "teachers"]
        person = "student_id" if entity is ENROLLMENTS else "teacher_id"
        return (
            sa.select(_person(other.c))
            .where(
                other.c.tenant_id == tenant_id,
                other.c.school_id == columns.school_id,
                other.c[person] == columns[person],
            )
            .scalar_subquery()
        )
    if "first_name" in entity.fields:
        return _person(columns)
    named: sa.ColumnElement[Any] = columns.name if "name" in entity.fields else columns.course_name
    return named


def _head(import_id: int, entity: Entity, kind: Any) -> list[Any]:
    return [sa.literal(import_id), sa.literal(entity.name), kind]


def _held(entity: Entity, tenant_id: int, import_id: int) -> sa.Select[Any]:
    """Held rows: their staged values are not trusted, so the name is the roster's if it has
    the record."""
    live, stage = roster_tables[entity.name], STAGE[entity.name]
    on = sa.and_(live.c.tenant_id == tenant_id, *(live.c[k] == stage.c[k] for k in entity.key))
    return (
        sa.select(
            *_head(import_id, entity, sa.literal(HELD)),
            *_keys(entity, stage.c),
            _label(entity, live.c, tenant_id),
            sa.null(),
            stage.c.line,
            live.c.tenant_id.is_not(None),
        )
        .select_from(stage.outerjoin(live, on))
        .where(stage.c.held)
    )


def _staged_adds(entity: Entity, tenant_id: int, import_id: int, staged: Stage) -> sa.Select[Any]:
    """A paused first import's records (of an entity the tenant has none of yet)."""
    stage = STAGE[entity.name]
    label = _label(entity, stage.c, tenant_id)
    person = {ENROLLMENTS.name: STUDENTS, SECTION_TEACHERS.name: TEACHERS}.get(entity.name)
    if person is not None and staged.new_to_tenant(person):
        label = sa.null()  # no student or teacher to name them by yet: spare the lookups
    keys = _keys(entity, stage.c)
    # In the primary key's order each row lands at the end of import_changes' index, not on
    # a page anywhere in it (700,000 enrollments of a paused first import: 19 s in file order).
    return (
        sa.select(*_head(import_id, entity, sa.literal(ADD)), *keys, label, *[sa.null()] * 3)
        .where(sa.not_(stage.c.held))
        .order_by(*keys)
    )


def _diffed(entity: Entity, tenant_id: int, import_id: int, postgres: bool) -> sa.Select[Any]:
    """The diff's rows, with the roster's values of the fields they change (before → after)."""
    live, changes = roster_tables[entity.name], CHANGES[entity.name]
    on = sa.and_(live.c.tenant_id == tenant_id, *(live.c[k] == changes.c[k] for k in entity.key))
    fields: sa.ColumnElement[Any] = sa.null()
    if entity.fields:
        flags = {f: changes.c[f"changed_{f}"] for f in entity.fields}
        built = fields_json(entity, live.c, changes.c, flags, postgres)
        fields = sa.case((changes.c.action.in_((UPDATE, REACTIVATE)), built))
    label = _label(entity, changes.c, tenant_id)
    named_by_person = entity is ENROLLMENTS or entity is SECTION_TEACHERS
    if not named_by_person:
        label = sa.func.coalesce(
            label, _label(entity, live.c, tenant_id)
        )  # deactivated: the roster's
    # The roster's row gives the fields' before values and a deactivated record's name: an
    # enrollment has neither (8,900 of a 1 % re-import's: a third of its 0.1 s).
    joined = bool(entity.fields) or not named_by_person
    return sa.select(
        *_head(import_id, entity, changes.c.action),
        *_keys(entity, changes.c),
        label,
        fields,
        sa.null(),
        sa.null(),
    ).select_from(changes.outerjoin(live, on) if joined else changes)


def fields_json(
    entity: Entity, before: Any, after: Any, flags: dict[str, Any], postgres: bool
) -> sa.ColumnElement[Any]:
    """`fields` as kept: JSON {field: [before, after]} of the fields whose flag is true, the
    others null (the change log's format too: daemon/store/changelog.py reads it back)."""
    # Field names are the entities' own constants, safe to inline as JSON keys.
    pairs: list[Any] = []
    for f in entity.fields:
        if postgres:
            pair = sa.func.json_build_array(before[f], after[f])
            pairs += [sa.literal_column(f"'{f}'"), sa.case((flags[f], pair))]
        else:
            pair = sa.func.json_array(before[f], after[f])
            pairs += [sa.literal_column(f"'{f}'"), sa.func.json(sa.case((flags[f], pair)))]
    if postgres:
        return sa.cast(sa.func.json_build_object(*pairs), sa.Text)
    return sa.func.json_object(*pairs)


def record_label(entity: Entity, columns: Any, tenant_id: int) -> sa.ColumnElement[Any]:
    """The name a change list shows a record by (for lists written elsewhere: an undo's)."""
    return _label(entity, columns, tenant_id)


# -- reading ---------------------------------------------------------------------------------


class Listing:
    """One import's records of one entity and kind: kept ones, or an applied first import's
    adds read from the roster."""

    def __init__(
        self, conn: Connection, *, tenant_id: int, import_id: int, entity: Entity, kind: str,
        applied: bool,
    ) -> None:  # fmt: skip
        self.conn, self.entity, self.kind, self._tenant_id = conn, entity, kind, tenant_id
        self._import_id = import_id
        self._searched: dict[str, Matches] = {}
        kept = import_changes.c
        self._kept = sa.and_(
            kept.import_id == import_id, kept.entity == entity.name, kept.kind == kind
        )
        self._roster = applied and kind == ADD and not self._any_kept()
        live = roster_tables[entity.name]
        if self._roster:
            self._columns = [live.c[k] for k in entity.key]
            self._name = _label(entity, live.c, tenant_id)
            self._where: sa.ColumnElement[bool] = sa.and_(
                live.c.tenant_id == tenant_id, live.c.created_import_id == import_id
            )
        else:
            self._columns = [kept[k] for k in KEY_COLUMNS[: len(entity.key)]]
            self._name = kept.label
            self._where = self._kept

    def _any_kept(self) -> bool:
        query = sa.select(sa.literal(1)).select_from(import_changes).where(self._kept).limit(1)
        return self.conn.execute(query).first() is not None

    def search(self, q: str) -> Matches:
        """The records matching `q` (all of them when it is empty), found once per search."""
        term = term_of(q)
        if term not in self._searched:
            if not term:
                found = Matches(self._where, None)
            elif self._roster:
                found = roster_matches(
                    self.conn, self.entity, self._tenant_id, self._import_id, term
                )
            else:
                found = Matches(sa.and_(self._where, kept_matches(self.conn, self.entity, term)),
                                None)  # fmt: skip
            self._searched[term] = found
        return self._searched[term]

    def _matching(self, q: str) -> sa.ColumnElement[bool]:
        return self.search(q).where

    def counted(self, q: str = "") -> tuple[int, bool]:
        """How many records match `q`, and whether that is exact: a kept list is counted up
        to SEARCH_COUNT_MAX matches, a search of the roster as far as its look-up went."""
        found, bound = self.search(q), change_search.SEARCH_COUNT_MAX
        if found.total is not None:
            return found.total, found.exact
        rows = sa.select(sa.literal(1)).where(found.where)
        if self._roster:
            rows = rows.select_from(roster_tables[self.entity.name])
        else:
            rows = rows.select_from(import_changes)
        whole = self._roster and found.exact  # a roster look-up's few keys: counted whole
        if not whole:
            rows = rows.limit(bound + 1)
        n = int(self.conn.execute(sa.select(sa.func.count()).select_from(rows.subquery()))
                .scalar_one())  # fmt: skip
        return n, whole or n <= bound

    def count(self, q: str = "") -> int:
        return self.counted(q)[0]

    def _select(self, where: sa.ColumnElement[bool], order: list[Any]) -> sa.Select[Any]:
        extra = [] if self._roster else [import_changes.c[c] for c in ("fields", "line", "known")]
        return sa.select(*self._columns, self._name, *extra).where(where).order_by(*order)

    def page(self, q: str, limit: int, at: Seek) -> list[ChangedRecord]:
        """One page in key order, found as `at` says: both lists are read through their
        primary key (import_changes', or the roster's), so a cursor costs a page's rows
        whatever the depth, where an offset costs every row it skips."""
        where = self._matching(q)
        order: list[Any] = list(self._columns)
        if at.after is not None or at.before is not None:
            cursor = at.after if at.after is not None else at.before
            assert cursor is not None
            row = sa.tuple_(*self._columns)
            bound = sa.tuple_(*(sa.literal(v) for v in cursor))
            # The leading column's own bound makes it an index range on SQLite too.
            if at.after is not None:
                where = sa.and_(where, self._columns[0] >= cursor[0], row > bound)
            else:
                where = sa.and_(where, self._columns[0] <= cursor[0], row < bound)
        backward = at.before is not None or at.from_end
        if backward:
            order = [c.desc() for c in self._columns]
        if self._roster:
            return self._roster_page(where, order, at.offset, limit)
        rows = self.conn.execute(self._select(where, order).offset(at.offset).limit(limit))
        records = [self._record(row) for row in rows]
        return records[::-1] if backward else records

    def _roster_page(
        self, where: sa.ColumnElement[bool], order: list[Any], offset: int, limit: int
    ) -> list[ChangedRecord]:
        """The page's records first, then their names: a link's name is a look-up, which
        PostgreSQL would otherwise make for every row an offset skips. In key order, whichever
        way `order` read them."""
        live = roster_tables[self.entity.name]
        records = (
            sa.select(*(live.c[c] for c in self.entity.columns))
            .where(where)
            .order_by(*order)
            .offset(offset)
            .limit(limit)
            .subquery()
        )
        keys = [records.c[k] for k in self.entity.key]
        named = sa.select(*keys, _label(self.entity, records.c, self._tenant_id)).order_by(*keys)
        return [self._record(row) for row in self.conn.execute(named)]

    def stream(self, q: str = "") -> Generator[ChangedRecord, None, None]:
        """Every matching record; close it (contextlib.closing) if not read to its end."""
        query = self._select(self._matching(q), list(self._columns))
        rows = self.conn.execute(query.execution_options(yield_per=STREAM_ROWS))
        try:
            for row in rows:
                yield self._record(row)
        finally:
            rows.close()  # PostgreSQL's server-side cursor

    def _record(self, row: Any) -> ChangedRecord:
        width = len(self.entity.key)
        key, label = tuple(row[:width]), row[width] or ""
        if self._roster:
            return ChangedRecord(key, label)
        fields, line, known = row[width + 1 :]
        changed = {
            name: (pair[0], pair[1])
            for name, pair in (json.loads(fields) if fields else {}).items()
            if pair is not None
        }
        return ChangedRecord(key, label, changed, line, known)
