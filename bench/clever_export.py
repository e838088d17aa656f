#!/usr/bin/env python3
"""A full Clever export of a large district, with every quirk real exports have, imported whole.

Writes Clever's own column set (with plain-text passwords), its grade spellings, `M/D/YY` term
dates, empty course names beside a section `Name`, teachers listed under another school than
some of their sections, co-teachers listed twice, CR-only line ends (schools.csv), lower-case
alphabetical headers (teachers.csv), no final line break (enrollments.csv) — and, as real data
has, a few genuine mistakes: co-teachers in no file, teachers' emails with a space, students
moved to a school the export left out. Then runs `rosterdrop import --dry-run --json` on a fresh
tenant and prints, per file, the rows read against the records the first import would bring in,
and the problem totals. Nothing here is timed: it shows what a district gets.

    .venv/bin/python bench/clever_export.py [--students 20000]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

GRADES = [
    "Kindergarten",
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
    "8",
    "9",
    "10",
    "11",
    "12",
    "PreKindergarten",
    "TransitionalKindergarten",
    "Ungraded",
    "PostGraduate",
    "Other",
]
ROSTERDROP = Path(sys.executable).with_name("rosterdrop")


def write(
    path: Path, header: list[str], rows: list[list[str]], newline: str = "\r\n", final: bool = True
) -> None:
    out = io.StringIO()
    csv.writer(out, lineterminator=newline).writerows([header, *rows])
    text = out.getvalue()
    path.write_bytes((text if final else text[: -len(newline)]).encode())


def generate(folder: Path, students: int) -> dict[str, int]:
    """The export, and the mistakes it holds: {what: how many}."""
    folder.mkdir(parents=True, exist_ok=True)
    n_schools, n_teachers, n_sections = max(2, students // 1500), students // 18, students // 3
    schools = [f"5a{i:022x}" for i in range(n_schools)]
    mistakes = {"unknown co-teacher": 0, "bad teacher email": 0, "student at unknown school": 0}
    write(
        folder / "schools.csv",
        [
            "School_id",
            "School_name",
            "School_number",
            "State_id",
            "Low_grade",
            "High_grade",
            "Principal",
            "Principal_email",
        ],
        [
            [
                s,
                f"School {i}",
                f"{i:03d}",
                f"{700 + i}",
                "Kindergarten",
                "12",
                "Pat Lee",
                f"principal{i}@example.org",
            ]
            for i, s in enumerate(schools)
        ],
        newline="\r",
    )
    teachers = []
    for i in range(n_teachers):
        email = f"t{i}@example.org"
        if i % 997 == 5:
            email = f"t{i} @example.org"
            mistakes["bad teacher email"] += 1
        teachers.append(
            [
                f"Ada{i}",
                "O'Brien",
                f"pw-{i}",
                schools[i % n_schools],
                email,
                f"5b{i:022x}",
                f"T{i:05d}",
                "Ms.",
                f"teacher{i}",
            ]
        )
    write(
        folder / "teachers.csv",
        [
            "first_name",
            "last_name",
            "password",
            "school_id",
            "teacher_email",
            "teacher_id",
            "teacher_number",
            "title",
            "username",
        ],
        teachers,
    )
    rows = []
    for i in range(students):
        school = schools[i % n_schools]
        if i % 4999 == 7:
            school = "5fffffffffffffffffffffff"
            mistakes["student at unknown school"] += 1
        rows.append(
            [
                school,
                f"5c{i:022x}",
                f"{100000 + i}",
                f"S{i:07d}",
                "Smith, Jr.",
                "",
                f"Zoë{i}",
                GRADES[i % len(GRADES)],
                "F",
                f"{i % 12 + 1}/{i % 28 + 1}/12",
                f"s{i}@students.example.org" if i % 3 else "",
                f"student{i}",
                f"pw{i}",
            ]
        )
    write(
        folder / "students.csv",
        [
            "School_id",
            "Student_id",
            "Student_number",
            "State_id",
            "Last_name",
            "Middle_name",
            "First_name",
            "Grade",
            "Gender",
            "DOB",
            "Student_email",
            "Username",
            "Password",
        ],
        rows,
    )
    sections, enrollments = [], []
    for i in range(n_sections):
        school = schools[i % n_schools]
        # a teacher of this school, sometimes one listed under the next school
        t = (i * 7) % n_teachers
        t -= t % n_schools
        t += (i % n_schools + (1 if i % 50 == 0 else 0)) % n_schools
        co = f"5b{(t + n_schools) % n_teachers:022x}" if i % 10 == 0 else ""
        if i % 10 == 0 and i % 1000 == 0:
            co = "5bffffffffffffffffffffff"
            mistakes["unknown co-teacher"] += 1
        name = f"Period {i % 8 + 1} - Class {i}"
        course = "" if i % 5 == 0 else f"Course {i % 300}"
        sections.append(
            [
                school,
                f"5d{i:022x}",
                f"5b{t % n_teachers:022x}",
                co,
                co if i % 40 == 0 else "",
                name,
                str(i % 8 + 1),
                course,
                "Year",
                "8/15/26",
                "6/10/27",
            ]
        )
    write(
        folder / "sections.csv",
        [
            "School_id",
            "Section_id",
            "Teacher_id",
            "Teacher_2_id",
            "Teacher_3_id",
            "Name",
            "Period",
            "Course_name",
            "Term_name",
            "Term_start",
            "Term_end",
        ],
        sections,
    )
    for i in range(students):
        school = i % n_schools
        for k in range(7):
            section = (i // n_schools * 7 + k) % (n_sections // n_schools) * n_schools + school
            if section < n_sections:
                enrollments.append([schools[school], f"5d{section:022x}", f"5c{i:022x}"])
    write(
        folder / "enrollments.csv",
        ["School_id", "Section_id", "Student_id"],
        list({tuple(e): e for e in enrollments}.values()),
        final=False,
    )
    return mistakes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        mistakes = generate(root / "export", args.students)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROSTERDROP_")}
        env |= {"ROSTERDROP_DATA_DIR": str(root / "data")}

        def rosterdrop(*argv: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [str(ROSTERDROP), *argv],
                env=env,
                capture_output=True,
                text=True,
                check=False,
                timeout=1800,
            )

        rosterdrop("tenant", "add", "district", "--no-password")
        result = rosterdrop(
            "import", str(root / "export"), "--tenant", "district", "--dry-run", "--json"
        )
        report = json.loads(result.stdout)
        for password in ("pw-1", "pw17"):
            assert password not in result.stdout, "a password reached the report"
    files = {
        "schools.csv": "schools",
        "teachers.csv": "teachers",
        "students.csv": "students",
        "sections.csv": "sections",
        "enrollments.csv": "enrollments",
    }
    print(f"{'file':<18}{'rows read':>11}{'imported':>11}{'held':>7}{'row errors':>12}")
    for name, entity in files.items():
        counts = report["counts"][entity]
        print(
            f"{name:<18}{report['files'][name]['rows']:>11,}{counts['added']:>11,}"
            f"{counts['held']:>7,}{report['files'][name]['errors']:>12,}"
        )
    links = report["counts"]["section_teachers"]
    print(f"{'(teacher links)':<18}{'':>11}{links['added']:>11,}{links['held']:>7,}")
    print("problem totals:", report["problem_totals"])
    print("mistakes written:", mistakes)
    codes: dict[str, int] = {}
    for problem in report["problems"]:
        codes[problem["code"]] = codes.get(problem["code"], 0) + 1
    print("problem codes (of those kept):", dict(sorted(codes.items())))


if __name__ == "__main__":
    main()
