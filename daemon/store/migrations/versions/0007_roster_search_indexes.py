"""Indexes for the Import Manager's roster pages: search and paging by name or id

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 12:00:00.000000

Additive only (downstream applications read these tables). Names are folded with lower() on
ASCII letters only, in byte order: `lower(x COLLATE "C")` on PostgreSQL is what SQLite's
lower() does, so both databases order and match alike, whatever the server's locale.
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# name -> (table, index columns); a "~" column is folded (see daemon/store/roster_reads.py,
# whose expressions must be these, exactly, for the databases to use them).
INDEXES = {
    "ix_students_by_last_name": (
        "students",
        "tenant_id ~last_name ~first_name school_id student_id",
    ),
    "ix_students_by_first_name": (
        "students",
        "tenant_id ~first_name ~last_name school_id student_id",
    ),
    "ix_students_by_id": ("students", "tenant_id ~student_id"),
    "ix_teachers_by_last_name": (
        "teachers",
        "tenant_id ~last_name ~first_name school_id teacher_id",
    ),
    "ix_teachers_by_first_name": (
        "teachers",
        "tenant_id ~first_name ~last_name school_id teacher_id",
    ),
    "ix_teachers_by_id": ("teachers", "tenant_id ~teacher_id"),
    "ix_sections_by_course_name": ("sections", "tenant_id ~course_name school_id section_id"),
    "ix_sections_by_id": ("sections", "tenant_id ~section_id"),
    "ix_schools_by_name": ("schools", "tenant_id ~name school_id"),
    # A student's sections, a teacher's sections: plain columns, as downstream queries them;
    # covering (with the primary key's columns, which a WITHOUT ROWID index holds), or SQLite
    # without statistics would rather read the school's or the tenant's whole range.
    "ix_enrollments_tenant_id_student_id": (
        "enrollments",
        "tenant_id student_id school_id active",
    ),
    "ix_section_teachers_tenant_id_teacher_id": (
        "section_teachers",
        "tenant_id teacher_id active position",
    ),
}
_NULLABLE = {"course_name", "name"}


def folded_sql(column: str, postgres: bool) -> str:
    value = f"coalesce({column}, '')" if column in _NULLABLE else column
    return f'lower({value} COLLATE "C")' if postgres else f"lower({value})"


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for name, (table, columns) in INDEXES.items():
        parts = [folded_sql(c[1:], postgres) if c.startswith("~") else c for c in columns.split()]
        op.execute(f"CREATE INDEX {name} ON {table} ({', '.join(parts)})")


def downgrade() -> None:
    for name in INDEXES:
        op.execute(f"DROP INDEX {name}")
