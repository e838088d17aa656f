#!/usr/bin/env python3
"""Generate a realistic Clever export of a district of any size, and a changed copy of it.

Ratios follow a mid-size district: ~1,500 students a school, a teacher per 18 students, a
section per 3 students (a tenth co-taught), seven enrollments per student. Every value is a
function of its row's index, so `change=0.01` alters about 1 % of each file's rows and
nothing else: some students leave and others arrive, grades and names change, sections move.
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

FIRST = ["Ava", "Liam", "Noah", "Emma", "Zoë", "José", "Mia", "Ethan", "Chloé", "Amir", "Siobhán"]
LAST = ["Smith", "O'Brien", "Nguyen", "García", "Smith, Jr.", "Müller", "Johnson", "Lee", "Díaz"]
COURSES = ["Algebra I", 'Computer Science "AP"', "Biology", "English 9", "World History"]
GRADES = ["KG", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12"]


def generate(
    folder: Path, students: int, *, change: float = 0.0, seed: int = 7, schools: int = 0
) -> dict[str, int]:
    """Write the five files into `folder`; returns the number of rows of each. `schools`:
    how many (else one per 1,500 students)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    n_schools = schools or max(1, students // 1500)
    n_teachers = max(1, students // 18)
    n_sections = max(1, students // 3)
    school = [f"SCH{i:04d}" for i in range(n_schools)]
    counts: dict[str, int] = {}

    def changed() -> bool:
        return change > 0 and rng.random() < change

    def write(name: str, header: list[str], rows: list[list[str]]) -> None:
        with (folder / name).open("w", newline="", encoding="utf-8") as handle:
            out = csv.writer(handle, lineterminator="\r\n")
            out.writerow(header)
            out.writerows(rows)
        counts[name] = len(rows)

    write("schools.csv", ["school_id", "school_name"], [[s, f"School {s}"] for s in school])

    teachers = []
    for i in range(n_teachers):
        last = LAST[i * 7 % len(LAST)] + ("-Ross" if changed() else "")
        teachers.append(
            [
                school[i % n_schools],
                f"T{i:06d}",
                FIRST[i % len(FIRST)],
                last,
                f"t{i}@district.example.org",
            ]
        )
    write(
        "teachers.csv",
        ["school_id", "teacher_id", "first_name", "last_name", "teacher_email"],
        teachers,
    )

    # Half the changed students leave; as many new ones arrive.
    leaving = {i for i in range(students) if changed() and rng.random() < 0.5}
    enrolled = [i for i in range(students) if i not in leaving] + list(
        range(students, students + len(leaving))
    )
    rows = []
    for i in enrolled:
        grade = GRADES[(i + (1 if changed() else 0)) % len(GRADES)]
        rows.append(
            [
                school[i % n_schools],
                f"S{i:07d}",
                FIRST[i * 3 % len(FIRST)],
                LAST[i * 5 % len(LAST)],
                f"s{i}@students.example.org",
                f"s{i}",
                grade,
                f"ST{i:09d}",
                "2012-01-01",
                "X",
            ]
        )
    header = [
        "School_ID",
        "student_id",
        "first_name",
        "last_name",
        "student_email",
        "username",
        "grade",
        "state_id",
        "dob",
        "gender",
    ]
    write("students.csv", header, rows)

    by_school: dict[str, list[int]] = {}
    for i in range(n_teachers):
        by_school.setdefault(school[i % n_schools], []).append(i)
    sections = []
    for i in range(n_sections):
        pool = by_school[school[i % n_schools]]
        co = f"T{pool[(i + 1) % len(pool)]:06d}" if i % 10 == 0 and len(pool) > 1 else ""
        end = "2027-06-11" if changed() else "2027-06-10"
        sections.append(
            [
                school[i % n_schools],
                f"SEC{i:06d}",
                f"T{pool[i % len(pool)]:06d}",
                co,
                COURSES[i % len(COURSES)],
                "2026-08-15",
                end,
            ]
        )
    header = [
        "school_id",
        "section_id",
        "teacher_id",
        "teacher_2_id",
        "course_name",
        "term_start",
        "term_end",
    ]
    write("sections.csv", header, sections)

    section_pool: dict[str, list[int]] = {}
    for i in range(n_sections):
        section_pool.setdefault(school[i % n_schools], []).append(i)
    enrollments = []
    for i in enrolled:
        pool = section_pool[school[i % n_schools]]
        picks = sorted({pool[(i * 7 + k * 131) % len(pool)] for k in range(7)})
        if changed():
            moved = pool[(picks[0] + 3) % len(pool)]
            picks = sorted({*picks[1:], moved})
        enrollments.extend([school[i % n_schools], f"SEC{p:06d}", f"S{i:07d}"] for p in picks)
    write("enrollments.csv", ["school_id", "section_id", "student_id"], enrollments)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--change", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    counts = generate(args.folder, args.students, change=args.change, seed=args.seed)
    size = sum(p.stat().st_size for p in args.folder.glob("*.csv"))
    print(counts, f"{size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
