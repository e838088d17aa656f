"""Reading a tenant's active roster, the way downstream applications see it."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from daemon.roster.entities import ENTITIES
from daemon.store.tables import roster_tables

_HIDDEN = {
    "tenant_id",
    "active",
    "created_import_id",
    "changed_import_id",
    "created_at",
    "changed_at",
}


def active_roster(conn: Connection, tenant_id: int) -> dict[str, list[dict[str, Any]]]:
    """Every active record by entity, in key order; sections list their teachers in display
    order: the primary teacher first, then the others by last name, first name (ignoring case
    and accents)."""
    roster: dict[str, list[dict[str, Any]]] = {}
    for entity in ENTITIES:
        table = roster_tables[entity.name]
        columns = [c for c in table.c if c.name not in _HIDDEN]
        rows = conn.execute(
            sa.select(*columns)
            .where(table.c.tenant_id == tenant_id, table.c.active)
            .order_by(*(table.c[k] for k in entity.key))
        ).mappings()
        roster[entity.name] = [_plain(dict(row)) for row in rows]
    teachers_of = _section_teachers(conn, tenant_id)
    for section in roster["sections"]:
        section["teachers"] = teachers_of.get((section["school_id"], section["section_id"]), [])
    return roster


def _section_teachers(conn: Connection, tenant_id: int) -> dict[tuple[str, str], list[str]]:
    links, teachers = roster_tables["section_teachers"], roster_tables["teachers"]
    # A section's teacher may be listed under another school only (Clever accepts it): their
    # name then comes from that listing.
    elsewhere = (
        sa.select(
            teachers.c.teacher_id,
            sa.func.min(teachers.c.last_name).label("last_name"),
            sa.func.min(teachers.c.first_name).label("first_name"),
        )
        .where(teachers.c.tenant_id == tenant_id, teachers.c.active)
        .group_by(teachers.c.teacher_id)
        .subquery()
    )
    same_school = sa.and_(
        teachers.c.tenant_id == links.c.tenant_id,
        teachers.c.school_id == links.c.school_id,
        teachers.c.teacher_id == links.c.teacher_id,
    )
    rows = conn.execute(
        sa.select(
            links.c.school_id,
            links.c.section_id,
            links.c.teacher_id,
            links.c.position,
            sa.func.coalesce(teachers.c.last_name, elsewhere.c.last_name).label("last_name"),
            sa.func.coalesce(teachers.c.first_name, elsewhere.c.first_name).label("first_name"),
        )
        .select_from(
            links.outerjoin(teachers, same_school).outerjoin(
                elsewhere, elsewhere.c.teacher_id == links.c.teacher_id
            )
        )
        .where(links.c.tenant_id == tenant_id, links.c.active)
    )
    # Sorted here, not in SQL: the databases' collations disagree ("de la Cruz" after "Zhu"
    # in SQLite, among the D's under an en_US PostgreSQL), and people expect the D's.
    ordered = sorted(
        rows,
        key=lambda r: (
            r.school_id,
            r.section_id,
            r.position != 1,
            _folded(r.last_name),
            _folded(r.first_name),
            r.teacher_id,
        ),
    )
    result: dict[tuple[str, str], list[str]] = {}
    for row in ordered:
        result.setdefault((row.school_id, row.section_id), []).append(row.teacher_id)
    return result


def _folded(name: str | None) -> str:
    """A name as a person compares it: case and accents aside."""
    decomposed = unicodedata.normalize("NFKD", name or "")
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    if row.get("extra"):
        row["extra"] = json.loads(row["extra"])
    for key in ("term_start", "term_end"):
        if row.get(key) is not None:
            row[key] = row[key].isoformat()
    return row


def active_counts(conn: Connection, tenant_id: int) -> dict[str, int]:
    counts = {}
    for entity in ENTITIES:
        table = roster_tables[entity.name]
        counts[entity.name] = conn.execute(
            sa.select(sa.func.count()).where(table.c.tenant_id == tenant_id, table.c.active)
        ).scalar_one()
    return counts
