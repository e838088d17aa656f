"""One roster record and what it links to: a student's sections, a teacher's sections, a
section's students; the imports that made it. Primary-key and index lookups only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from daemon.errors import NotFound
from daemon.store.roster_reads import MAX_RELATED, folded, plain, section_teachers
from daemon.store.tables import imports, roster_tables


def record(conn: Connection, tenant_id: int, entity: str, key: Sequence[str]) -> dict[str, Any]:
    """One record by its natural key (school and id), inactive or not."""
    t = roster_tables[entity]
    names = [c.name for c in t.primary_key.columns if c.name != "tenant_id"]
    row = (
        conn.execute(
            sa.select(t).where(
                t.c.tenant_id == tenant_id, *(t.c[n] == v for n, v in zip(names, key, strict=True))
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no {entity} {'/'.join(key)}")
    return plain(dict(row))


def import_of(conn: Connection, import_id: int) -> dict[str, Any]:
    row = conn.execute(
        sa.select(imports.c.id, imports.c.state, imports.c.received_at).where(
            imports.c.id == import_id
        )
    ).first()
    if row is None:
        return {"id": import_id, "state": None, "received_at": None}
    return {"id": row.id, "state": row.state, "received_at": row.received_at}


def sections_of_student(
    conn: Connection, tenant_id: int, school_id: str, student_id: str
) -> list[dict[str, Any]]:
    """The student's enrollments (active or not), each with its section and teachers."""
    e, s = roster_tables["enrollments"], roster_tables["sections"]
    rows = conn.execute(
        sa.select(
            e.c.section_id,
            e.c.active,
            s.c.course_name,
            s.c.term_start,
            s.c.term_end,
            s.c.active.label("section_active"),
        )
        .select_from(
            e.outerjoin(
                s,
                sa.and_(
                    s.c.tenant_id == e.c.tenant_id,
                    s.c.school_id == e.c.school_id,
                    s.c.section_id == e.c.section_id,
                ),
            )
        )
        .where(e.c.tenant_id == tenant_id, e.c.student_id == student_id, e.c.school_id == school_id)
        .order_by(e.c.active.desc(), e.c.section_id)
        .limit(MAX_RELATED + 1)  # one more: the page says when it shows only the first
    ).mappings()
    found = [plain({**dict(r), "school_id": school_id}) for r in rows]
    teachers = section_teachers(conn, tenant_id, [(school_id, r["section_id"]) for r in found])
    for row in found:
        row["teachers"] = teachers.get((school_id, row["section_id"]), [])
    return found


def sections_of_teacher(conn: Connection, tenant_id: int, teacher_id: str) -> list[dict[str, Any]]:
    """Every section the teacher is linked to, in any school (a teacher may be listed under
    one school and teach in another), with its position and the section's teachers."""
    st, s = roster_tables["section_teachers"], roster_tables["sections"]
    rows = conn.execute(
        sa.select(
            st.c.school_id,
            st.c.section_id,
            st.c.position,
            st.c.active,
            s.c.course_name,
            s.c.term_start,
            s.c.term_end,
        )
        .select_from(
            st.outerjoin(
                s,
                sa.and_(
                    s.c.tenant_id == st.c.tenant_id,
                    s.c.school_id == st.c.school_id,
                    s.c.section_id == st.c.section_id,
                ),
            )
        )
        .where(st.c.tenant_id == tenant_id, st.c.teacher_id == teacher_id)
        .order_by(st.c.active.desc(), st.c.school_id, st.c.section_id)
        .limit(MAX_RELATED + 1)  # one more: the page says when it shows only the first
    ).mappings()
    found = [plain(dict(r)) for r in rows]
    teachers = section_teachers(conn, tenant_id, [(r["school_id"], r["section_id"]) for r in found])
    for row in found:
        row["teachers"] = teachers.get((row["school_id"], row["section_id"]), [])
    return found


def students_of_section(
    conn: Connection, tenant_id: int, school_id: str, section_id: str
) -> list[dict[str, Any]]:
    e, p = roster_tables["enrollments"], roster_tables["students"]
    rows = conn.execute(
        sa.select(e.c.student_id, e.c.active, p.c.first_name, p.c.last_name, p.c.grade)
        .select_from(
            e.outerjoin(
                p,
                sa.and_(
                    p.c.tenant_id == e.c.tenant_id,
                    p.c.school_id == e.c.school_id,
                    p.c.student_id == e.c.student_id,
                ),
            )
        )
        .where(e.c.tenant_id == tenant_id, e.c.school_id == school_id, e.c.section_id == section_id)
        .order_by(
            e.c.active.desc(),
            folded(conn, p.c.last_name),
            folded(conn, p.c.first_name),
            e.c.student_id,
        )
        .limit(MAX_RELATED + 1)  # one more: the page says when it shows only the first
    ).mappings()
    return [{**dict(r), "school_id": school_id} for r in rows]
