"""Generate a realistic Clever export of a district of any size (for the benchmarks)."""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

FIRST = ["Ava", "Liam", "Noah", "Emma", "Zoë", "José", "Mia", "Ethan", "Chloé", "Amir", "Siobhán"]
LAST = ["Smith", "O'Brien", "Nguyen", "García", "Smith, Jr.", "Müller", "Johnson", "Lee", "Díaz"]
COURSES = ["Algebra I", 'Computer Science "AP"', "Biology", "English 9", "World History"]
GRADES = ["KG", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12"]


def generate(folder: Path, students: int, seed: int = 7, change: float = 0.0) -> dict[str, int]:
    """Write the five files for a district of `students`; `change` mutates that share of rows.

    Ratios follow a real mid-size district: ~1,500 students a school, one teacher per 18
    students, a third of a section per student, seven enrollments per student.
    """
    rng = random.Random(seed)
    mutate = random.Random(seed + 1)
    folder.mkdir(parents=True, exist_ok=True)
    n_schools = max(1, students // 1500)
    n_teachers = max(1, students // 18)
    n_sections = max(1, students // 3)
    schools = [f"SCH{i:04d}" for i in range(n_schools)]
    counts: dict[str, int] = {}

    def changed() -> bool:
        return change > 0 and mutate.random() < change

    def write(name: str, header: list[str], rows: list[list[str]]) -> None:
        with (folder / name).open("w", newline="", encoding="utf-8") as handle:
            out = csv.writer(handle, lineterminator="\r\n")
            out.writerow(header)
            out.writerows(rows)
        counts[name] = len(rows)

    write("schools.csv", ["school_id", "school_name"], [[s, f"School {s}"] for s in schools])

    teacher_school = [schools[i % n_schools] for i in range(n_teachers)]
    write(
        "teachers.csv",
        ["school_id", "teacher_id", "first_name", "last_name", "teacher_email"],
        [
            [teacher_school[i], f"T{i:06d}", rng.choice(FIRST),
             rng.choice(LAST) + ("x" if changed() else ""), f"t{i}@district.example.org"]
            for i in range(n_teachers)
        ],
    )

    student_school = [schools[i % n_schools] for i in range(students)]
    kept_students = [i for i in range(students) if not changed()]
    kept_students += range(students, students + students - len(kept_students))
    student_school += [schools[i % n_schools] for i in range(students, 2 * students)]
    rows = []
    for i in kept_students:
        grade = GRADES[i % len(GRADES)]
        if changed():
            grade = GRADES[(i + 1) % len(GRADES)]
        rows.append([
            student_school[i], f"S{i:07d}", rng.choice(FIRST), rng.choice(LAST),
            f"s{i}@students.example.org", f"s{i}", grade, f"ST{i:09d}", "2012-01-01", "X",
        ])
    write(
        "students.csv",
        ["School_ID", "student_id", "first_name", "last_name", "student_email", "username",
         "grade", "state_id", "dob", "gender"],
        rows,
    )

    section_rows = []
    by_school_teachers: dict[str, list[int]] = {}
    for i, school in enumerate(teacher_school):
        by_school_teachers.setdefault(school, []).append(i)
    section_school = [schools[i % n_schools] for i in range(n_sections)]
    for i in range(n_sections):
        pool = by_school_teachers[section_school[i]]
        teacher = pool[i % len(pool)]
        co = pool[(i + 1) % len(pool)] if i % 10 == 0 and len(pool) > 1 else None
        section_rows.append([
            section_school[i], f"SEC{i:06d}", f"T{teacher:06d}",
            f"T{co:06d}" if co is not None else "", rng.choice(COURSES),
            "2026-08-15", "2027-06-10" if not changed() else "2027-06-11",
        ])
    write(
        "sections.csv",
        ["school_id", "section_id", "teacher_id", "teacher_2_id", "course_name", "term_start",
         "term_end"],
        section_rows,
    )

    by_school_sections: dict[str, list[int]] = {}
    for i, school in enumerate(section_school):
        by_school_sections.setdefault(school, []).append(i)
    enrollment_rows = []
    for i in kept_students:
        school = student_school[i]
        pool = by_school_sections[school]
        picks = {pool[(i * 7 + k * 131) % len(pool)] for k in range(7)}
        for section in sorted(picks):
            if changed():
                section = pool[(section + 3) % len(pool)]
            enrollment_rows.append([school, f"SEC{section:06d}", f"S{i:07d}"])
    write("enrollments.csv", ["school_id", "section_id", "student_id"], enrollment_rows)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--change", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    counts = generate(args.folder, args.students, args.seed, args.change)
    size = sum(p.stat().st_size for p in args.folder.glob("*.csv"))
    print(counts, f"{size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
