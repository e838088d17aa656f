"""The bulk path must give exactly what the careful row-by-row path gives, on messy uploads.

Hypothesis writes five files from pools of plausible values, clean and broken (padding,
control characters, upper-case and bad emails, grade spellings, date formats, unknown and
repeated ids, co-teachers), sometimes keeping whole files plain so that batches really take
the bulk path; small batches mix plain and messy ones in one file.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.clever import reader
from daemon.roster.tenant import TenantSettings
from tests.support.clever import check_folder, write_csv

# "Clean" values are those the bulk path handles itself (it lower-cases, replaces grades and
# rewrites dates); "messy" ones send a batch down the careful path.
SCHOOLS = ["A", "B"]
BAD_SCHOOLS = ["Z", "", " A", "a"]
NAMES = ["Ann", "O'Brien", "Smith, Jr.", 'Say "Hi"', "Zoë", "José Ñúñez", "Lee"]
BAD_NAMES = ["", "  Padded ", "Tab\there", "Mary\r\nAnn", "\xa0Nbsp", "x\x7fy", "y" * 1001]
EMAILS = ["t@d.org", "First.Last@School.K12.us", "ü@dömain.de", "Ü@DÖMAIN.DE"]
BAD_EMAILS = ["bad", "a@b.c", "two@@d.org", " pad@d.org", ""]
GRADES = ["", "KG", "01", "12", "PK", "Other", "K", "1", "Kindergarten", "kg", "other"]
BAD_GRADES = ["Z9", " 03", "1st", "Grade 13"]
DATES = ["", "2026-08-15", "08/15/2026", "20260815"]
END_DATES = ["", "2027-06-10", "06/10/2027", "20270610"]
BAD_DATES = ["2026-13-01", "2026-02-30", "soon", "2027-06-10 "]
EXTRAS = ["", "X1", 'a "quoted", value']


def ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(1, n + 1)]


@st.composite
def upload(draw: st.DrawFn) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Five files (header, rows). The upload, or else each file, is plain or messy as a whole,
    by a coin toss; the references of a plain file name rows drawn from the files above it,
    so that they exist."""

    def value(clean: Sequence[str], messy: Sequence[str], plain: bool) -> str:
        choices = [*clean] if plain else [*clean, *messy]
        return choices[draw(st.integers(0, len(choices) - 1))]

    all_plain = draw(st.booleans())

    def table(columns: Columns, refs: Refs = None) -> tuple[list[str], list[list[str]]]:
        plain = all_plain or draw(st.booleans())
        rows = []
        for _ in range(draw(st.integers(1, 8))):
            row = [value(clean, messy, plain) for _, clean, messy in columns]
            if refs is not None and plain:
                row = refs(row)
            rows.append(row)
        order = draw(st.permutations(range(len(columns))))
        return [columns[i][0] for i in order], [[row[i] for i in order] for row in rows]

    files = {}
    files["schools.csv"] = table(
        [("school_id", SCHOOLS, ["", "A "]), ("school_name", NAMES, BAD_NAMES)]
    )
    schools = sorted(
        {row[header.index("school_id")] for header, rows in [files["schools.csv"]] for row in rows}
    )

    def school_refs(row: list[str]) -> list[str]:
        return [draw(st.sampled_from(schools)), *row[1:]]

    files["teachers.csv"] = table(
        [
            ("school_id", SCHOOLS, BAD_SCHOOLS),
            ("Teacher_ID", ids("T", 8), ["", "T9"]),
            ("first_name", NAMES, BAD_NAMES),
            ("last_name", NAMES, BAD_NAMES),
            ("teacher_email", EMAILS, BAD_EMAILS),
            ("title", EXTRAS, ["\tMs."]),
        ],
        school_refs,
    )
    files["students.csv"] = table(
        [
            ("School_ID", SCHOOLS, BAD_SCHOOLS),
            ("student_id", ids("S", 8), ["", "S9"]),
            ("first_name", NAMES, BAD_NAMES),
            ("last_name", NAMES, BAD_NAMES),
            ("student_email", ["", *EMAILS], BAD_EMAILS),
            ("username", ["u1", "u2"], ["", " u3"]),
            ("grade", GRADES, BAD_GRADES),
            ("state_id", EXTRAS, EXTRAS),
            ("dob", EXTRAS, EXTRAS),
        ],
        school_refs,
    )
    teachers = _keys(files["teachers.csv"], "school_id", "teacher_id")
    students = _keys(files["students.csv"], "school_id", "student_id")

    fresh_sections = iter(ids("C", 8))

    def section_refs(row: list[str]) -> list[str]:
        school, primary = draw(st.sampled_from(teachers))
        colleagues = ["", *(t for s, t in teachers if s == school)]
        co = [draw(st.sampled_from(colleagues)) for _ in range(2)]
        return [school, next(fresh_sections), primary, *co, *row[5:]]

    files["sections.csv"] = table(
        [
            ("school_id", SCHOOLS, BAD_SCHOOLS),
            ("section_id", ids("C", 8), ["", "C9"]),
            ("teacher_id", ids("T", 4), ["", "T9"]),
            ("teacher_2_id", ["", *ids("T", 4)], ["T9", " T1"]),
            ("Teacher_3_ID", ["", *ids("T", 4)], ["T9"]),
            ("course_name", NAMES, BAD_NAMES),
            ("term_start", DATES, BAD_DATES),
            ("term_end", END_DATES, [*BAD_DATES, "2026-08-14"]),
            ("period", EXTRAS, EXTRAS),
        ],
        section_refs if teachers else None,
    )
    sections = _keys(files["sections.csv"], "school_id", "section_id")

    def enrollment_refs(row: list[str]) -> list[str]:
        school, section = draw(st.sampled_from(sections))
        pupils = [s for school_id, s in students if school_id == school] or ["S9"]
        return [school, section, draw(st.sampled_from(pupils))]

    files["enrollments.csv"] = table(
        [
            ("school_id", SCHOOLS, BAD_SCHOOLS),
            ("section_id", ids("C", 8), ["", "C9"]),
            ("student_id", ids("S", 8), ["", "S9"]),
        ],
        enrollment_refs if sections else None,
    )
    return files


Columns = list[tuple[str, Sequence[str], Sequence[str]]]
Refs = Callable[[list[str]], list[str]] | None


def _keys(file: tuple[list[str], list[list[str]]], *columns: str) -> list[tuple[str, str]]:
    header, rows = file
    where = [[h.lower() for h in header].index(c) for c in columns]
    return sorted({(row[where[0]], row[where[1]]) for row in rows})


# How many uploads engines are compared on, and the grade rules they are read with.
MESSY_UPLOADS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
GRADE_RULES = st.sampled_from([{}, {"1st": "01", "K": "PK"}])


@MESSY_UPLOADS
@given(
    files=upload(),
    batch_rows=st.sampled_from([1, 2, 3, 10_000]),
    rules=GRADE_RULES,
    tail=st.sampled_from(["", "\r\n", ",,,\r\n\r\n"]),
)
def test_bulk_and_careful_paths_agree(
    files: dict[str, tuple[list[str], list[list[str]]]],
    batch_rows: int,
    rules: dict[str, str],
    tail: str,
) -> None:
    tenant = TenantSettings(grade_rules=rules)
    with tempfile.TemporaryDirectory() as scratch, pytest.MonkeyPatch.context() as patch:
        folder = Path(scratch)
        for name, (header, rows) in files.items():
            write_csv(folder / name, header, rows, tail=tail)
        # Small batches put plain and messy batches side by side in one file.
        patch.setattr(reader, "BATCH_ROWS", batch_rows)
        bulk = check_folder(folder, tenant, engine="batch")
        careful = check_folder(folder, tenant, engine="careful")

    assert bulk.problems == careful.problems
    assert bulk.records == careful.records
    assert bulk.validation == careful.validation
