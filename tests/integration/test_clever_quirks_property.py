"""Issue 9's property: whatever mix of real exports' quirks a district sends, nothing crashes,
every problem says where it is, and the roster is exactly the rows whose required values are
good (a bad optional value costs only itself, a bad co-teacher only its link).

Hypothesis draws a small district and, for each row, quirks that Clever accepts (header case
and order, line endings, date and grade spellings, empty course names, teachers listed under
another school, password columns) and real mistakes (a teacher's bad email, a student without
a first name, a grade Excel turned into a date, a co-teacher in no file). The expected first
import is computed here from what was drawn, and compared with what validation stages.
"""

from __future__ import annotations

import csv
import io
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from daemon.clever.validate import ENGINES, Engine
from tests.support.clever import check_folder

SCHOOLS = ["SCH1", "SCH2"]
DATES = {
    # how the file writes it -> what the roster keeps
    "8/1/15": date(2015, 8, 1),
    "08/01/2015": date(2015, 8, 1),
    "2015-8-1": date(2015, 8, 1),
    "20150801": date(2015, 8, 1),
    "6/1/16": date(2016, 6, 1),
    "2016-06-01": date(2016, 6, 1),
}
GRADES = {"Kindergarten": "KG", "1": "01", "PreKindergarten": "PK", "PostGraduate": "PS",
          "InfantToddler": "IT", "07": "07", "ungraded": "UG"}  # fmt: skip
# Row-level problems carry a column; these describe a whole file, a header or a blank line.
FILE_LEVEL = {"extra_columns", "absent_column", "blank_rows", "other_files", "unnamed_column"}


@dataclass
class District:
    """The drawn files as rows, and the records a first import must bring in."""

    files: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    expected: dict[str, set[tuple[Any, ...]]] = field(default_factory=dict)


@st.composite
def districts(draw: st.DrawFn) -> District:
    d = District(files={n: [] for n in ("schools", "teachers", "students", "sections",
                                        "enrollments")})  # fmt: skip
    expected: dict[str, set[tuple[Any, ...]]] = {
        e: set() for e in ("schools", "teachers", "students", "sections", "section_teachers",
                           "enrollments")}  # fmt: skip
    passwords = draw(st.booleans())
    for school in SCHOOLS:
        d.files["schools"].append({"School_id": school, "School_name": f"School {school}"})
        expected["schools"].add((school, f"School {school}"))
    teachers: dict[str, tuple[str, bool]] = {}  # id -> (school listed under, imported)
    for n in range(draw(st.integers(2, 4))):
        tid, school = f"T{n}", draw(st.sampled_from(SCHOOLS))
        bad_email = draw(st.booleans()) and n > 0  # T0 always good: every section has one
        email = "no email" if bad_email else f"t{n}@d.org"
        row = {"School_id": school, "Teacher_id": tid, "First_name": "Ada",
               "Last_name": f"L{n}", "Teacher_email": email}  # fmt: skip
        if passwords:
            row["Password"] = f"secret{n}"
        d.files["teachers"].append(row)
        teachers[tid] = (school, not bad_email)
        if not bad_email:
            expected["teachers"].add((school, tid, "Ada", f"L{n}", f"t{n}@d.org"))
    students: dict[str, tuple[str, bool]] = {}
    for n in range(draw(st.integers(1, 5))):
        sid, school = f"S{n}", draw(st.sampled_from(SCHOOLS))
        nameless = draw(st.booleans()) and draw(st.booleans())
        spelling = draw(st.sampled_from([*GRADES, "8-Jun", ""]))
        email = draw(st.sampled_from(["", f"s{n}@x.org", "s@@bad"]))
        row = {"School_id": school, "Student_id": sid, "First_name": "" if nameless else "Zoë",
               "Last_name": "Kim", "Student_email": email, "Username": f"u{n}",
               "Grade": spelling}  # fmt: skip
        if passwords:
            row["Password"] = f"secret-s{n}"
        d.files["students"].append(row)
        students[sid] = (school, not nameless)
        if not nameless:
            good_email = email if "@@" not in email else ""
            grade = GRADES.get(spelling, "")
            expected["students"].add((school, sid, "Zoë", "Kim", good_email, f"u{n}", grade))
    for n in range(draw(st.integers(1, 3))):
        cid, school = f"C{n}", draw(st.sampled_from(SCHOOLS))
        primary = "T0" if n == 0 else draw(st.sampled_from(sorted(teachers)))
        co = draw(st.sampled_from(["", *sorted(teachers), "T99"]))
        name = draw(st.sampled_from(["", f"Class {n}"]))
        course = draw(st.sampled_from(["", f"Course {n}"]))
        start, end = draw(st.sampled_from(["", "8/1/15", "08/01/2015", "2015-8-1", "20150801"])), ""
        if start:
            end = draw(st.sampled_from(["", "6/1/16", "2016-06-01"]))
        d.files["sections"].append(
            {"School_id": school, "Section_id": cid, "Teacher_id": primary, "Teacher_2_id": co,
             "Name": name, "Course_name": course, "Term_start": start, "Term_end": end}
        )  # fmt: skip
        expected["sections"].add(
            (school, cid, primary, course or name or None, DATES.get(start), DATES.get(end))
        )
        for position, tid in ((1, primary), (2, co)):
            if tid and tid in teachers and teachers[tid][1] and (position == 1 or tid != primary):
                expected["section_teachers"].add((school, cid, tid, position))
        for sid, (student_school, imported) in students.items():
            if student_school == school and draw(st.booleans()):
                d.files["enrollments"].append(
                    {"School_id": school, "Section_id": cid, "Student_id": sid}
                )
                if imported:
                    expected["enrollments"].add((school, cid, sid))
    d.expected = expected
    return d


def _write(folder: Path, name: str, rows: list[dict[str, str]], style: dict[str, Any]) -> None:
    columns = list(rows[0]) if rows else ["School_id", "Section_id", "Student_id"]
    columns = sorted(columns) if style["sorted"] else columns
    header = [c.lower() if style["lower"] else c for c in columns]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=style["newline"])
    writer.writerow(header)
    writer.writerows([row.get(c, "") for c in columns] for row in rows)
    text = out.getvalue()
    if not style["final_newline"]:
        text = text[: -len(style["newline"])]
    (folder / f"{name}.csv").write_bytes(text.encode())


styles = st.fixed_dictionaries(
    {
        "sorted": st.booleans(),
        "lower": st.booleans(),
        "newline": st.sampled_from(["\n", "\r\n", "\r"]),
        "final_newline": st.booleans(),
    }
)


@pytest.mark.parametrize("engine", ENGINES)
@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(district=districts(), style=st.lists(styles, min_size=5, max_size=5))
def test_any_mix_of_quirks_imports_every_row_whose_required_values_are_good(
    engine: Engine, district: District, style: list[dict[str, Any]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for (name, rows), file_style in zip(district.files.items(), style, strict=True):
            _write(folder, name, rows, file_style)
        if not district.files["enrollments"]:
            return  # a file with no data rows is fatal: another test's business
        checked = check_folder(folder, engine=engine)

    assert not checked.validation.fatal, checked.problems
    for problem in checked.problems:
        assert problem.file, problem
        assert problem.line, problem
        if problem.code not in FILE_LEVEL:
            assert problem.column, problem
    roster = {
        "schools": {r[:2] for r in checked.fresh("schools")},
        "teachers": {r[:5] for r in checked.fresh("teachers")},
        "students": {r[:7] for r in checked.fresh("students")},
        "sections": {r[:6] for r in checked.fresh("sections")},
        "section_teachers": set(checked.fresh("section_teachers")),
        "enrollments": set(checked.fresh("enrollments")),
    }
    assert roster == district.expected
    assert "secret" not in repr(checked.records)
