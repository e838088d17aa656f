"""Reading one tenant's roster a page at a time: search by id or name, keyset paging, counts;
one record's links are in roster_records.py. Every read goes through an index (migration 0007)."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from daemon.errors import NotFound
from daemon.store.imports import APPLIED
from daemon.store.tables import imports, roster_tables

MAX_RELATED = 500  # sections, students or enrollments shown on one record's page
# The five lists people browse (section_teachers is shown inside sections).
LISTED = ("schools", "students", "teachers", "sections", "enrollments")
_NULLABLE = {"course_name", "name"}  # as in migration 0007's folded columns
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold(text: str) -> str:
    """A search term as the databases fold names: A–Z lower-cased, nothing else changed."""
    return text.translate(_ASCII_LOWER)


def folded(conn: Connection, column: sa.ColumnElement[Any]) -> ColumnElement[Any]:
    """The expression migration 0007 indexes (the databases match it as written)."""
    value: ColumnElement[Any] = column
    if getattr(column, "name", None) in _NULLABLE:
        value = sa.func.coalesce(column, sa.literal_column("''"))
    if conn.dialect.name == "postgresql":
        value = sa.collate(value, "C")
    return sa.func.lower(value)


def name_prefix(expr: ColumnElement[Any], term: str) -> ColumnElement[bool]:
    """`expr` starts with `term`, as an index range: [term, term with its last letter + 1)."""
    last = ord(term[-1])
    if last >= 0x10FFFF:
        return expr >= term
    return sa.and_(expr >= term, expr < term[:-1] + chr(last + 1))


@dataclass(frozen=True)
class Query:
    """What a list asks for: a search term, inactive records too, a cursor."""

    q: str = ""
    inactive: bool = False
    after: tuple[str, ...] | None = None  # the last row's sort values, from the cursor


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    after: tuple[str, ...] | None  # the cursor of the next page; None: this is the last


def _order(conn: Connection, entity: str) -> list[ColumnElement[Any]]:
    t = roster_tables[entity]
    if entity == "schools":
        return [folded(conn, t.c.name), t.c.school_id]
    if entity in ("students", "teachers"):
        person = t.c.student_id if entity == "students" else t.c.teacher_id
        return [folded(conn, t.c.last_name), folded(conn, t.c.first_name), t.c.school_id, person]
    if entity == "sections":
        return [folded(conn, t.c.course_name), t.c.school_id, t.c.section_id]
    return [t.c.school_id, t.c.section_id, t.c.student_id]  # enrollments: the primary key


def _branches(
    conn: Connection, tenant_id: int, entity: str, term: str
) -> list[tuple[ColumnElement[bool] | None, bool]]:
    """The search, as docs/web.md says it: an id exactly, or a name by its beginning; each
    branch says whether its index reads it in the list's order. The branches are read apart:
    an OR would make the databases walk the order's index through every name before a match."""
    t = roster_tables[entity]
    if entity == "schools":
        return [
            (folded(conn, t.c.school_id) == term, False),  # a district has few schools
            (name_prefix(folded(conn, t.c.name), term), True),
        ]
    if entity in ("students", "teachers"):
        person = t.c.student_id if entity == "students" else t.c.teacher_id
        return [
            (_with_id(conn, tenant_id, entity, person, term), False),
            (name_prefix(folded(conn, t.c.last_name), term), True),
            (name_prefix(folded(conn, t.c.first_name), term), False),
        ]
    return [
        (_with_id(conn, tenant_id, entity, t.c.section_id, term), False),
        (name_prefix(folded(conn, t.c.course_name), term), True),
    ]


def _with_id(
    conn: Connection, tenant_id: int, entity: str, column: sa.Column[Any], term: str
) -> ColumnElement[bool] | None:
    """The records whose id folds to `term` (None: there are none), looked up first through
    the folded id's index (SQLite, without statistics, would rather filter the whole tenant's
    primary key range)."""
    t = roster_tables[entity]
    keys = conn.execute(
        sa.select(t.c.school_id, column)
        .where(t.c.tenant_id == tenant_id, folded(conn, column) == term)
        .limit(MAX_RELATED)
    ).all()
    if not keys:
        return None
    return any_key(t, tenant_id, ("school_id", column.name), keys)


def _enrollments_matching(conn: Connection, tenant_id: int, term: str) -> ColumnElement[bool]:
    """Enrollments of a student or of a section with the id `term`: the ids are looked up
    first in their own (indexed) tables, then the enrollments by those values."""
    e, students, sections = (roster_tables[n] for n in ("enrollments", "students", "sections"))
    people = conn.execute(
        sa.select(students.c.school_id, students.c.student_id)
        .where(students.c.tenant_id == tenant_id, folded(conn, students.c.student_id) == term)
        .limit(MAX_RELATED)
    ).all()
    classes = conn.execute(
        sa.select(sections.c.school_id, sections.c.section_id)
        .where(sections.c.tenant_id == tenant_id, folded(conn, sections.c.section_id) == term)
        .limit(MAX_RELATED)
    ).all()
    found: list[ColumnElement[bool]] = [
        sa.and_(e.c.school_id == school, e.c.student_id == student) for school, student in people
    ]
    found += [
        sa.and_(e.c.school_id == school, e.c.section_id == section) for school, section in classes
    ]
    return sa.or_(sa.false(), *found)


def list_page(conn: Connection, tenant_id: int, entity: str, query: Query, size: int) -> Page:
    """One page of `entity` in its order (names, folded, then keys), after `query.after`."""
    t = roster_tables[entity]
    order = _order(conn, entity)
    where: list[ColumnElement[bool]] = [t.c.tenant_id == tenant_id]
    if not query.inactive:
        where.append(t.c.active)
    if query.after is not None:
        if len(query.after) != len(order):
            raise NotFound("not a page of this list")
        # The leading bound makes the first column an index range on SQLite too (it does not
        # take a row-value comparison of expressions as one).
        where.append(order[0] >= query.after[0])
        where.append(sa.tuple_(*order) > sa.tuple_(*(sa.literal(v) for v in query.after)))
    labels = [o.label(f"_sort{i}") for i, o in enumerate(order)]
    branches: list[tuple[ColumnElement[bool] | None, bool]] = [(sa.true(), True)]
    if query.q:
        term = fold(query.q)
        if entity == "enrollments":
            branches = [(_enrollments_matching(conn, tenant_id, term), True)]
        else:
            branches = _branches(conn, tenant_id, entity, term)
    arms = []
    for branch, in_order in branches:
        if branch is None:
            continue  # no record has that id
        sort = order
        if not in_order and conn.dialect.name == "sqlite":
            # An order no index has (`x || ''`), so that SQLite reads the branch through its
            # own index and sorts it, instead of filtering the order's index from the start.
            sort = [o.op("||")(sa.literal_column("''")) for o in order]
        arms.append(sa.select(t, *labels).where(*where, branch).order_by(*sort).limit(size + 1))
    if not arms:
        return Page([], None)
    if len(arms) == 1:
        found = conn.execute(arms[0]).mappings()
    else:
        # Each branch's first page in the list's order, merged: a page of the whole.
        merged = sa.union(*(sa.select(arm.subquery()) for arm in arms)).subquery()
        found = conn.execute(
            sa.select(merged)
            .order_by(*(merged.c[f"_sort{i}"] for i in range(len(order))))
            .limit(size + 1)
        ).mappings()
    rows = [dict(r) for r in found]
    more = len(rows) > size
    rows = rows[:size]
    after = tuple(str(rows[-1][f"_sort{i}"]) for i in range(len(order))) if more else None
    for row in rows:
        for i in range(len(order)):
            row.pop(f"_sort{i}")
        plain(row)
    if entity == "sections":
        teachers = section_teachers(
            conn, tenant_id, [(r["school_id"], r["section_id"]) for r in rows]
        )
        for row in rows:
            row["teachers"] = teachers.get((row["school_id"], row["section_id"]), [])
    if entity == "enrollments":
        _name_enrollments(conn, tenant_id, rows)
    return Page(rows, after)


def counts(conn: Connection, tenant_id: int) -> dict[str, dict[str, int]]:
    """Active and inactive records per entity, from the figures the applied imports recorded
    with what they applied (only imports change the roster, and never delete a record):
    active after the last one; inactive, what all of them deactivated less what they
    reactivated. Counting the rows would read every record of a district."""
    result = {entity: {"active": 0, "inactive": 0} for entity in LISTED}
    applied = conn.execute(
        sa.select(imports.c.counts)
        .where(imports.c.tenant_id == tenant_id, imports.c.state.in_([str(s) for s in APPLIED]))
        .order_by(imports.c.id)
    ).scalars()
    for figures in applied:
        for entity in LISTED:
            c = (figures or {}).get(entity)
            if c is None:
                continue
            active = c["active_before"] + c["added"] + c["reactivated"] - c["deactivated"]
            result[entity]["active"] = active
            result[entity]["inactive"] += c["deactivated"] - c["reactivated"]
    return result


def school_counts(conn: Connection, tenant_id: int, school_id: str) -> dict[str, dict[str, int]]:
    """A school's active and inactive records per entity (its range of each primary key)."""
    result: dict[str, dict[str, int]] = {}
    for entity in LISTED[1:]:
        t = roster_tables[entity]
        found: dict[bool, int] = {
            bool(active): count
            for active, count in conn.execute(
                sa.select(t.c.active, sa.func.count())
                .where(t.c.tenant_id == tenant_id, t.c.school_id == school_id)
                .group_by(t.c.active)
            )
        }
        result[entity] = {"active": found.get(True, 0), "inactive": found.get(False, 0)}
    return result


def any_key(
    table: sa.Table, tenant_id: int, columns: Sequence[str], keys: Iterable[Sequence[str]]
) -> ColumnElement[bool]:
    """The tenant's rows with one of these keys, as ORed equalities that each start with the
    tenant: both databases look each one up in the primary key (SQLite, given a row-value IN
    list or the tenant outside the OR, reads the whole tenant's range instead)."""
    return sa.or_(
        sa.false(),
        *(
            sa.and_(
                table.c.tenant_id == tenant_id,
                *(table.c[c] == v for c, v in zip(columns, key, strict=True)),
            )
            for key in keys
        ),
    )


def section_teachers(
    conn: Connection, tenant_id: int, sections: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The active teachers of each section in display order: the primary teacher first, then
    the others by last name, first name, ignoring case and accents (as `roster show`). A
    teacher listed only under another school is named from that listing."""
    if not sections:
        return {}
    st = roster_tables["section_teachers"]
    links = conn.execute(
        sa.select(st.c.school_id, st.c.section_id, st.c.teacher_id, st.c.position).where(
            st.c.active, any_key(st, tenant_id, ("school_id", "section_id"), set(sections))
        )
    ).all()
    names = _teacher_names(conn, tenant_id, {(link.school_id, link.teacher_id) for link in links})
    result: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for link in links:
        first, last = names.get((link.school_id, link.teacher_id)) or names.get(
            ("", link.teacher_id), ("", "")
        )
        result.setdefault((link.school_id, link.section_id), []).append(
            {
                "teacher_id": link.teacher_id,
                "first_name": first,
                "last_name": last,
                "position": link.position,
                "school_id": link.school_id,
            }
        )
    for listed in result.values():
        listed.sort(
            key=lambda x: (
                x["position"] != 1,
                _by_name(x["last_name"]),
                _by_name(x["first_name"]),
                x["teacher_id"],
            )
        )
    return result


def _teacher_names(
    conn: Connection, tenant_id: int, wanted: set[tuple[str, str]]
) -> dict[tuple[str, str], tuple[str, str]]:
    """(first, last) of each (school, teacher) from its own school's listing; a teacher
    listed only under another school (Clever accepts it) under ("", teacher) from that one."""
    t = roster_tables["teachers"]
    if not wanted:
        return {}
    columns = (t.c.school_id, t.c.teacher_id, t.c.first_name, t.c.last_name)
    found = {
        (r.school_id, r.teacher_id): (r.first_name, r.last_name)
        for r in conn.execute(
            sa.select(*columns).where(
                t.c.active, any_key(t, tenant_id, ("school_id", "teacher_id"), wanted)
            )
        )
    }
    elsewhere = sorted({teacher for key in wanted - found.keys() for teacher in key[1:]})
    if elsewhere:
        # The other schools' listings, found through the folded id's index (migration 0007).
        keys = conn.execute(
            sa.select(t.c.school_id, t.c.teacher_id)
            .where(
                t.c.tenant_id == tenant_id,
                folded(conn, t.c.teacher_id).in_({fold(i) for i in elsewhere}),
            )
            .order_by(t.c.school_id)
            .limit(MAX_RELATED)
        ).all()
        for r in conn.execute(
            sa.select(*columns)
            .where(t.c.active, any_key(t, tenant_id, ("school_id", "teacher_id"), keys))
            .order_by(t.c.school_id)
        ):
            if r.teacher_id in elsewhere:
                found.setdefault(("", r.teacher_id), (r.first_name, r.last_name))
    return found


def _name_enrollments(conn: Connection, tenant_id: int, rows: list[dict[str, Any]]) -> None:
    """Each enrollment's student name and course name, by primary key."""
    if not rows:
        return
    p, s = roster_tables["students"], roster_tables["sections"]
    pupils = {(r["school_id"], r["student_id"]) for r in rows}
    classes = {(r["school_id"], r["section_id"]) for r in rows}
    people = {
        (r.school_id, r.student_id): f"{r.first_name} {r.last_name}"
        for r in conn.execute(
            sa.select(p.c.school_id, p.c.student_id, p.c.first_name, p.c.last_name).where(
                any_key(p, tenant_id, ("school_id", "student_id"), pupils)
            )
        )
    }
    courses = {
        (r.school_id, r.section_id): r.course_name
        for r in conn.execute(
            sa.select(s.c.school_id, s.c.section_id, s.c.course_name).where(
                any_key(s, tenant_id, ("school_id", "section_id"), classes)
            )
        )
    }
    for row in rows:
        row["student_name"] = people.get((row["school_id"], row["student_id"]), "")
        row["course_name"] = courses.get((row["school_id"], row["section_id"]), "")


def _by_name(name: str | None) -> str:
    decomposed = unicodedata.normalize("NFKD", name or "")
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def plain(row: dict[str, Any]) -> dict[str, Any]:
    row.pop("tenant_id", None)
    if row.get("extra"):
        row["extra"] = json.loads(row["extra"])
    for key in ("term_start", "term_end"):
        if row.get(key) is not None:
            row[key] = row[key].isoformat()
    return row
