#!/usr/bin/env python3
# ruff: noqa: E501 - a benchmark script: rows of CSV read best one to a line
"""The same district as a Clever export and as a OneRoster 1.1 bulk set, validated and
imported both ways: what reading OneRoster costs beside Clever's five files.

Generates the Clever files with bench/district.py, writes the OneRoster set they are (orgs,
users with every school in orgSourcedIds, one session per term, one course per course name,
classes, teacher and student enrollments; every field quoted, CRLF), then times
`rosterdrop validate` on each and `rosterdrop import` of each into a tenant of its own.

    .venv/bin/python bench/oneroster_export.py [--students 20000]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))
from bench.district import generate


def read(folder: Path, name: str) -> list[dict[str, str]]:
    with (folder / name).open(encoding="utf-8", newline="") as handle:
        return [{k.lower(): v for k, v in row.items()} for row in csv.DictReader(handle)]


def write(folder: Path, name: str, header: list[str], rows: list[list[str]]) -> None:
    with (folder / name).open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        out.writerow(header)
        out.writerows(rows)


def people(rows: list[dict[str, str]], id_column: str, email: str) -> dict[str, dict[str, object]]:
    found: dict[str, dict[str, object]] = {}
    for row in rows:
        person = found.setdefault(row[id_column], {"row": row, "schools": []})
        person["schools"].append(row["school_id"])  # type: ignore[union-attr]
    return found


def oneroster(clever: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    schools = read(clever, "schools.csv")
    teachers = people(read(clever, "teachers.csv"), "teacher_id", "teacher_email")
    students = people(read(clever, "students.csv"), "student_id", "student_email")
    sections = read(clever, "sections.csv")
    write(target, "manifest.csv", ["propertyName", "value"], [
        ["manifest.version", "1.0"], ["oneroster.version", "1.1"],
        *([f"file.{n}", "bulk"] for n in ("academicSessions", "classes", "courses", "enrollments", "orgs", "users")),
    ])  # fmt: skip
    write(target, "orgs.csv", ["sourcedId", "status", "dateLastModified", "name", "type", "parentSourcedId"],
          [["D1", "", "", "District", "district", ""]]
          + [[s["school_id"], "", "", s["school_name"], "school", "D1"] for s in schools])  # fmt: skip
    users = []
    for role, found, email in (
        ("teacher", teachers, "teacher_email"),
        ("student", students, "student_email"),
    ):
        for ident, person in found.items():
            row: dict[str, str] = person["row"]  # type: ignore[assignment]
            users.append([
                ident, "", "", "true", ",".join(person["schools"]), role,  # type: ignore[arg-type]
                row.get("username", ""), row["first_name"], row["last_name"], row[email],
                row.get("grade", ""), row.get("state_id", ""),
            ])  # fmt: skip
    write(target, "users.csv", [
        "sourcedId", "status", "dateLastModified", "enabledUser", "orgSourcedIds", "role",
        "username", "givenName", "familyName", "email", "grades", "metadata.state_id",
    ], users)  # fmt: skip
    terms = {(s["term_start"], s["term_end"]) for s in sections}
    term_ids = {term: f"TERM{i}" for i, term in enumerate(sorted(terms))}
    write(target, "academicSessions.csv", ["sourcedId", "status", "dateLastModified", "title", "type", "startDate", "endDate"],
          [[t, "", "", t, "term", s, e] for (s, e), t in term_ids.items()])  # fmt: skip
    course_ids = {
        name: f"C{i}" for i, name in enumerate(sorted({s["course_name"] for s in sections}))
    }
    write(target, "courses.csv", ["sourcedId", "status", "dateLastModified", "title"],
          [[c, "", "", name] for name, c in course_ids.items()])  # fmt: skip
    write(target, "classes.csv", [
        "sourcedId", "status", "dateLastModified", "title", "courseSourcedId", "classType",
        "schoolSourcedId", "termSourcedIds",
    ], [[s["section_id"], "", "", s["course_name"], course_ids[s["course_name"]], "scheduled",
         s["school_id"], term_ids[s["term_start"], s["term_end"]]] for s in sections])  # fmt: skip
    enrollments = []
    for s in sections:
        teachers_of = [
            s["teacher_id"],
            *(v for k, v in s.items() if k.startswith("teacher_") and k != "teacher_id" and v),
        ]
        for n, teacher in enumerate(teachers_of):
            enrollments.append(
                [
                    f"ET{len(enrollments)}",
                    "",
                    "",
                    s["section_id"],
                    s["school_id"],
                    teacher,
                    "teacher",
                    "true" if n == 0 else "false",
                ]
            )
    for e in read(clever, "enrollments.csv"):
        enrollments.append(
            [
                f"ES{len(enrollments)}",
                "",
                "",
                e["section_id"],
                e["school_id"],
                e["student_id"],
                "student",
                "false",
            ]
        )
    write(target, "enrollments.csv", [
        "sourcedId", "status", "dateLastModified", "classSourcedId", "schoolSourcedId",
        "userSourcedId", "role", "primary",
    ], enrollments)  # fmt: skip


def timed(env: dict[str, str], *args: str) -> tuple[float, dict[str, object]]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "daemon", *args], env=env, capture_output=True, text=True
    )
    took = time.perf_counter() - started
    if done.returncode not in (0, 3):
        raise SystemExit(f"rosterdrop {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return took, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rosterdrop-bench-") as scratch:
        root = Path(scratch)
        counts = generate(root / "clever", args.students)
        oneroster(root / "clever", root / "oneroster")
        env = {**os.environ, "ROSTERDROP_DATA_DIR": str(root / "data")}
        for tenant in ("clever", "oneroster"):
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "daemon",
                    "tenant",
                    "add",
                    tenant,
                    "--email",
                    f"a@{tenant}.example",
                ],
                env=env,
                capture_output=True,
                check=True,
            )
        print(f"{args.students:,} students, {counts['enrollments.csv']:,} enrollments")
        for kind in ("clever", "oneroster"):
            folder = str(root / kind)
            validate, _ = timed(env, "validate", folder, "--json")
            imported, report = timed(env, "import", folder, "--tenant", kind, "--json")
            print(
                f"  {kind:10} validate {validate:6.1f} s   import {imported:6.1f} s"
                f"   {report['state']}, {report['problem_totals']}"
            )


if __name__ == "__main__":
    main()
