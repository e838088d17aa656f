"""Clever's own sample district (tests/fixtures/clever/clever_sample), and what importing it
must leave: every record, and none of its plain-text passwords stored anywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from daemon.store.database import Database
from daemon.store.tables import metadata
from tests.support.clever import FIXTURES

SAMPLE = FIXTURES / "clever_sample"
PASSWORDS = [f"pw{n}secret" for n in range(14)] + [
    *("fa1Teiph", "Ahm4ohwi", "ooQu3eic", "Ie8aiK7e", "xo1Wae9o")
]
# What validating the sample reports: one error (the co-teacher in no file), and the warnings.
PROBLEM_TOTALS = {"fatal": 0, "error": 1, "warning": 24}
WARNINGS = {
    "grade_replaced": 10,  # one per spelling: Kindergarten, 1, PreKindergarten, …
    "extra_columns": 4,
    "secret_column": 2,
    "date_normalised": 2,
    "email_lowercased": 1,
    "bad_grade": 1,  # 8-Jun
    "repeated_teacher": 1,
    "teacher_other_school": 1,
    "missing_course_name": 1,
    "course_name_from_name": 1,
}
# What the sample holds once imported: every class, all but one link (a co-teacher in no file).
RECORDS = {
    "schools": 3,
    "teachers": 5,
    "students": 14,
    "sections": 6,
    "section_teachers": 9,
    "enrollments": 34,
}


def everything_stored(db: Database, data_dir: Path) -> str:
    """Every value of every table, and every file rosterdrop wrote (the uploads aside)."""
    with db.read() as conn:
        text = [
            repr(row) for table in metadata.sorted_tables for row in conn.execute(sa.select(table))
        ]
    for path in data_dir.rglob("*"):
        if (path.is_file() and path.suffix != ".csv") or path.name == "problems.csv":
            text.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(text)


def counts(roster: dict[str, list[Any]]) -> dict[str, int]:
    links = sum(len(s["teachers"]) for s in roster["sections"])
    return {**{k: len(v) for k, v in roster.items()}, "section_teachers": links}
