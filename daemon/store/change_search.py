"""The change browser's search, defined as the roster's (docs/web.md, "Roster"): a record
matches when its id equals the term or its name begins with it, A–Z folded; a link (an
enrollment, a section's teacher) by its student's or teacher's match, or its section's id.

Read from the roster (an applied first import's adds), the matches are looked up through
migration 0007's indexes first; only a term that finds more than SEARCH_LOOKUP_MAX of them
(so common that the list's own key order meets a match every few rows) filters the list in
key order instead, and is then counted in part ("at least N"): a record list as far as the
look-up went, a link list up to SEARCH_COUNT_MAX. A kept list (import_changes) is filtered
within its own primary-key range and counted up to SEARCH_COUNT_MAX."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from daemon.roster.entities import ENROLLMENTS, SECTION_TEACHERS, Entity
from daemon.store.roster_reads import fold, folded, name_prefix
from daemon.store.tables import import_changes, roster_tables

# Records (or students, teachers and sections, for a link list) a search looks up through
# the indexes before it reads the list in key order instead; also the depth of the ORed
# key lookups it then reads by (SQLite refuses expressions deeper than 1,000).
SEARCH_LOOKUP_MAX = 500
SEARCH_COUNT_MAX = 1_000  # matches counted in a kept or dense link list; then "at least 1,001"
# A kept record's own id: import_changes' key columns that hold it (links: both ends').
_KEPT_IDS = {"schools": ("key1",), "enrollments": ("key2", "key3"),
             "section_teachers": ("key2", "key3")}  # fmt: skip
_PERSON = {ENROLLMENTS.name: ("students", "student_id"),
           SECTION_TEACHERS.name: ("teachers", "teacher_id")}  # fmt: skip


@dataclass(frozen=True)
class Matches:
    """A search's records: the condition on the list's rows, and how many there are —
    `total` exactly, or (`exact` False) at least `total`; None: count `where` (with `exact`
    False, or in a kept list, up to SEARCH_COUNT_MAX)."""

    where: ColumnElement[bool]
    total: int | None
    exact: bool = True


def term_of(q: str) -> str:
    return fold(q.strip())


def kept_matches(conn: Connection, entity: Entity, term: str) -> ColumnElement[bool]:
    """A kept record: an id equal to the term, or a word of its name (kept as "First Last")
    beginning with it — the first name, the last name, or a later word of either."""
    kept = import_changes.c
    ids = [folded(conn, kept[c]) == term for c in _KEPT_IDS.get(entity.name, ("key2",))]
    label = folded(conn, kept.label)
    named = [
        label.startswith(term, autoescape=True),
        label.contains(" " + term, autoescape=True),
    ]
    return sa.or_(*ids, *named)


def _record_branches(conn: Connection, table: sa.Table, entity: str, term: str) -> list[Any]:
    """The roster's search branches for a record of `entity` (roster_reads._branches)."""
    t = table.c
    if entity == "schools":
        return [folded(conn, t.school_id) == term, name_prefix(folded(conn, t.name), term)]
    if entity in ("students", "teachers"):
        person = t.student_id if entity == "students" else t.teacher_id
        return [
            folded(conn, person) == term,
            name_prefix(folded(conn, t.last_name), term),
            name_prefix(folded(conn, t.first_name), term),
        ]
    return [folded(conn, t.section_id) == term, name_prefix(folded(conn, t.course_name), term)]


def _looked_up(
    conn: Connection, columns: list[Any], where: list[Any], branches: list[Any]
) -> set[tuple[str, ...]]:
    """The keys each branch finds through its own index, up to one past the bound: read
    apart, as an OR would make the databases scan the tenant's records instead."""
    found: set[tuple[str, ...]] = set()
    for branch in branches:
        query = sa.select(*columns).where(*where, branch).limit(SEARCH_LOOKUP_MAX + 1)
        found |= {tuple(row) for row in conn.execute(query)}
    return found


def _by_ids(
    conn: Connection, table: sa.Table, tenant_id: int, columns: Any, keys: Any, *, fold_id: bool
) -> ColumnElement[bool]:
    """Rows with one of these keys (values of `columns`: (school, id), or (id,)), each a
    lookup in the id's index. PostgreSQL: an IN list of the ids (folded, for a record's
    index; plain, for a link's), then the exact pairs among them — 500 ORed equalities take
    it longer to plan than to run. SQLite, without statistics, reads an IN list as a filter
    of the tenant's whole range, but each ORed equality as a search (_each_key)."""
    if not keys:
        return sa.false()
    if conn.dialect.name == "sqlite":
        return sa.or_(*_each_key(table, tenant_id, columns, keys))
    column = columns[-1]
    tenant = table.c.tenant_id == tenant_id
    ids = sorted({key[-1] for key in keys})
    if fold_id:
        found = folded(conn, table.c[column]).in_(sorted({fold(i) for i in ids}))
    else:
        found = table.c[column].in_(ids)
    if len(columns) == 1:
        return sa.and_(tenant, found)
    return sa.and_(tenant, found, sa.tuple_(*(table.c[c] for c in columns)).in_(sorted(keys)))


def _each_key(
    table: sa.Table, tenant_id: int, columns: Any, keys: Any
) -> list[ColumnElement[bool]]:
    """One equality per key, each with the tenant. Not roster_reads.any_key's OR, whose
    `0 = 1` (to be false when empty) is a term no index serves: SQLite then scans the table."""
    return [
        sa.and_(
            table.c.tenant_id == tenant_id,
            *(table.c[c] == v for c, v in zip(columns, key, strict=True)),
        )
        for key in keys
    ]


def roster_matches(
    conn: Connection, entity: Entity, tenant_id: int, import_id: int, term: str
) -> Matches:
    """An applied import's adds (the roster's records it created) that match `term`."""
    live = roster_tables[entity.name]
    base = sa.and_(live.c.tenant_id == tenant_id, live.c.created_import_id == import_id)
    # By keys, each lookup carries the tenant itself: SQLite, given the tenant outside the
    # ORed lookups too, reads the tenant's whole range instead of searching each of them.
    created = live.c.created_import_id == import_id
    if entity.name not in _PERSON:
        branches = _record_branches(conn, live, entity.name, term)
        # Looked up in the whole tenant: SQLite, given created_import_id too, would rather
        # filter the tenant's primary key range than search the id's index.
        tenant = [live.c.tenant_id == tenant_id]
        keys = _looked_up(conn, [live.c[k] for k in entity.key], tenant, branches)
        if len(keys) > SEARCH_LOOKUP_MAX:
            return Matches(sa.and_(base, sa.or_(*branches)), len(keys), exact=False)
        if not keys:
            return Matches(sa.false(), 0)
        by_ids = _by_ids(conn, live, tenant_id, entity.key, keys, fold_id=True)
        return Matches(sa.and_(created, by_ids), None)  # counted: a few lookups
    people_table, person = _PERSON[entity.name]
    people = roster_tables[people_table]
    sections = roster_tables["sections"]
    # An enrollment's student is of its school; a section's teacher may be listed under
    # another school (Clever accepts it), so a teacher matches its links in every school.
    person_key = ["school_id", person] if entity is ENROLLMENTS else [person]
    branches = _record_branches(conn, people, people_table, term)
    found = _looked_up(
        conn, [people.c[k] for k in person_key], [people.c.tenant_id == tenant_id], branches
    )
    classes = _looked_up(
        conn, [sections.c.school_id, sections.c.section_id],
        [sections.c.tenant_id == tenant_id], [folded(conn, sections.c.section_id) == term],
    )  # fmt: skip
    if not found and not classes:
        return Matches(sa.false(), 0)
    if len(found) + len(classes) <= SEARCH_LOOKUP_MAX:
        by_people = [_by_ids(conn, live, tenant_id, person_key, found, fold_id=False)]
        lookups = [
            *(by_people if found else []),
            *_each_key(live, tenant_id, ("school_id", "section_id"), classes),
        ]
        return Matches(sa.and_(created, sa.or_(*lookups)), None)
    named = sa.exists().where(
        people.c.tenant_id == tenant_id,
        *(people.c[k] == live.c[k] for k in person_key),
        sa.or_(*branches),
    )
    dense = sa.and_(base, sa.or_(named, folded(conn, live.c.section_id) == term))
    # Counted as a kept list is, up to SEARCH_COUNT_MAX: matches are dense in the key order
    # (counting the look-up's own ORed keys took SQLite seconds: it reads them by school).
    return Matches(dense, None, exact=False)
