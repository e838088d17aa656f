"""Writing Clever uploads the way SIS exports write them, and validating them for tests.

`write_csv` controls the bytes (encoding, BOM, line endings) so tests can reproduce what the
field sends; `Snapshot` is a roster as plain data that writes itself as five files and says what
`roster show --json` must print once it is imported.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from daemon.clever.files import find_files
from daemon.clever.validate import Engine, Validation, fingerprints, validate
from daemon.roster.entities import BY_NAME, ENTITIES
from daemon.roster.problems import Problem, ProblemLog
from daemon.roster.tenant import TenantSettings
from daemon.store.database import Database
from daemon.store.staging import STAGE, Stage

FIXTURES = Path(__file__).parents[1] / "fixtures" / "clever"

HEADERS = {
    "schools.csv": ["school_id", "school_name"],
    "teachers.csv": ["school_id", "teacher_id", "first_name", "last_name", "teacher_email"],
    "students.csv": [
        "school_id",
        "student_id",
        "first_name",
        "last_name",
        "student_email",
        "username",
        "grade",
    ],
    "sections.csv": [
        "school_id",
        "section_id",
        "teacher_id",
        "course_name",
        "term_start",
        "term_end",
    ],
    "enrollments.csv": ["school_id", "section_id", "student_id"],
}


def csv_text(rows: Iterable[Sequence[str]], newline: str = "\r\n") -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator=newline).writerows(rows)
    return out.getvalue()


def write_csv(
    path: Path,
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    encoding: str = "utf-8",
    bom: bool = False,
    newline: str = "\r\n",
    tail: str = "",
) -> Path:
    """Write a CSV as an SIS would: `tail` is appended raw (blank lines, `,,,,` rows)."""
    text = csv_text([header, *rows], newline) + tail
    data = text.encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def write_upload(folder: Path, files: Mapping[str, Iterable[Sequence[str]]]) -> Path:
    """Write the given files with the standard headers (rows must follow HEADERS' order)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in files.items():
        write_csv(folder / name, HEADERS[name], rows)
    return folder


def minimal_files() -> dict[str, list[list[str]]]:
    """A valid one-school district: two teachers, two students, one section, two enrollments."""
    return {
        "schools.csv": [["SCH1", "Lincoln Elementary"]],
        "teachers.csv": [
            ["SCH1", "T1", "Ada", "Lovelace", "ada@district.org"],
            ["SCH1", "T2", "Alan", "Turing", "alan@district.org"],
        ],
        "students.csv": [
            ["SCH1", "S1", "Ann", "Lee", "ann@students.org", "ann", "03"],
            ["SCH1", "S2", "Bob", "Kim", "", "bob", "04"],
        ],
        "sections.csv": [["SCH1", "SEC1", "T1", "Math 3", "2026-08-15", "2027-06-10"]],
        "enrollments.csv": [["SCH1", "SEC1", "S1"], ["SCH1", "SEC1", "S2"]],
    }


@dataclass
class Checked:
    """What validating a folder produced: counts, every problem, and the staged records."""

    validation: Validation
    problems: list[Problem]
    records: dict[str, list[tuple[Any, ...]]]

    def codes(self) -> list[tuple[str, str | None, int | None, str | None, str]]:
        """(severity, file, line, column, code) of each problem, in order."""
        return [(p.severity.value, p.file, p.line, p.column, p.code) for p in self.problems]

    def fresh(self, entity: str) -> list[tuple[Any, ...]]:
        """Staged records that will be applied (not held), without line, held and kept."""
        return [r[:-3] for r in self.records[entity] if not r[-2]]

    def held(self, entity: str) -> list[tuple[Any, ...]]:
        return [r[:-3] for r in self.records[entity] if r[-2]]

    def kept(self, entity: str) -> dict[tuple[Any, ...], str]:
        """key -> the fields whose roster value stays (",grade,"), for records that have any."""
        width = len(BY_NAME[entity].key)
        return {r[:width]: r[-1] for r in self.records[entity] if r[-1]}


def check_folder(
    folder: Path,
    settings: TenantSettings | None = None,
    *,
    engine: Engine = "columnar",
    database: str = "sqlite://",
) -> Checked:
    """Validate `folder` into real staging tables (an in-memory SQLite database unless
    `database` names another) and read them back, ordered by line then key."""
    found = find_files(folder)
    problems = ProblemLog(keep=100_000)
    db = Database(database)
    try:
        with db.read() as conn, Stage(conn) as stage:
            validation = validate(
                found,
                fingerprints(found),
                settings or TenantSettings(),
                problems,
                stage,
                engine=engine,
            )
            stage.flush()
            records = {}
            for entity in ENTITIES:
                table = STAGE[entity.name]
                order = [table.c.line, *(table.c[k] for k in entity.key)]
                rows = stage.conn.execute(sa.select(table).order_by(*order)).all()
                records[entity.name] = [tuple(row) for row in rows]
            stage.close()
    finally:
        db.close()
    return Checked(validation, list(problems.kept), records)


# -- a roster as plain data --------------------------------------------------------------------


@dataclass
class Snapshot:
    """A district's full upload. Values are canonical (what the roster stores), except where a
    `raw` spelling says how the file writes it (grade `K`, a date as MM/DD/YYYY, …)."""

    schools: dict[str, str] = field(default_factory=dict)
    # (school, teacher) -> (first, last, email)
    teachers: dict[tuple[str, str], tuple[str, str, str]] = field(default_factory=dict)
    # (school, student) -> (first, last, email, username, grade)
    students: dict[tuple[str, str], tuple[str, str, str, str, str]] = field(default_factory=dict)
    # (school, section) -> (teacher ids, position 1 first; course; start; end)
    sections: dict[tuple[str, str], tuple[tuple[str, ...], str, str, str]] = field(
        default_factory=dict
    )
    enrollments: set[tuple[str, str, str]] = field(default_factory=set)
    # canonical value -> how the file spells it
    raw: dict[str, str] = field(default_factory=dict)

    def write(
        self, folder: Path, *, order: Sequence[int] | None = None, newline: str = "\r\n"
    ) -> Path:
        """The five files; `order` shuffles the rows of every file (same snapshot, new bytes)."""
        folder.mkdir(parents=True, exist_ok=True)
        width = max([len(t) for t, *_ in self.sections.values()] + [1])
        co = [f"teacher_{n}_id" for n in range(2, width + 1)]
        tables: dict[str, tuple[list[str], list[list[str]]]] = {
            "schools.csv": (HEADERS["schools.csv"], [[k, v] for k, v in self.schools.items()]),
            "teachers.csv": (
                HEADERS["teachers.csv"],
                [[*k, f, last, self._raw(e)] for k, (f, last, e) in self.teachers.items()],
            ),
            "students.csv": (
                HEADERS["students.csv"],
                [
                    [*k, f, last, self._raw(e), u, self._raw(g)]
                    for k, (f, last, e, u, g) in self.students.items()
                ],
            ),
            "sections.csv": (
                [*HEADERS["sections.csv"], *co],
                [
                    [k[0], k[1], t[0], c, self._raw(s), self._raw(e), *t[1:]]
                    + [""] * (width - len(t))
                    for k, (t, c, s, e) in self.sections.items()
                ],
            ),
            "enrollments.csv": (HEADERS["enrollments.csv"], [list(e) for e in self.enrollments]),
        }
        for name, (header, rows) in tables.items():
            if order is not None:
                rows = [rows[i] for i in _permutation(order, len(rows))]
            write_csv(folder / name, header, rows, newline=newline)
        return folder

    def _raw(self, value: str) -> str:
        return self.raw.get(value, value)

    def records(self) -> dict[str, dict[tuple[str, ...], tuple[Any, ...]]]:
        """Each entity's records as the roster keeps them: key -> fields (extra is None)."""
        return {
            "schools": {(k,): (v, None) for k, v in self.schools.items()},
            "teachers": {k: (*v, None) for k, v in self.teachers.items()},
            "students": {k: (*v, None) for k, v in self.students.items()},
            "sections": {
                k: (t[0], c, s or None, e or None, None)
                for k, (t, c, s, e) in self.sections.items()
            },
            "section_teachers": {
                (k[0], k[1], teacher): (n,)
                for k, (t, *_) in self.sections.items()
                for n, teacher in enumerate(t, start=1)
            },
            "enrollments": {e: () for e in self.enrollments},
        }

    def roster_json(self) -> dict[str, list[dict[str, Any]]]:
        """What `roster show --json` prints for this snapshot once imported."""
        roster: dict[str, list[dict[str, Any]]] = {}
        for entity in ENTITIES:
            rows = []
            for key, fields in sorted(self.records()[entity.name].items()):
                rows.append(dict(zip(entity.columns, (*key, *fields), strict=True)))
            roster[entity.name] = rows
        for section in roster["sections"]:
            school = section["school_id"]
            teachers, *_ = self.sections[(school, section["section_id"])]
            others = sorted(
                teachers[1:],
                key=lambda t: (*map(_plain, self.teachers[(school, t)][1::-1]), t),
            )
            section["teachers"] = [teachers[0], *others]
        return roster


def one_class_district(students: int) -> Snapshot:
    """One school, one teacher, one class; `students` students, only the first enrolled (so
    students can come and go without touching an enrollment)."""
    snap = Snapshot(schools={"SCH1": "Lincoln"})
    snap.teachers[("SCH1", "T1")] = ("Ada", "Lovelace", "ada@d.org")
    snap.sections[("SCH1", "C1")] = (("T1",), "Math", "2026-08-15", "2027-06-10")
    for n in range(1, students + 1):
        snap.students[("SCH1", f"S{n:02d}")] = ("Kid", f"No{n}", "", f"s{n}", "03")
    snap.enrollments.add(("SCH1", "C1", "S01"))
    return snap


def _plain(name: str) -> str:
    """How a person alphabetises a name: "de la Cruz" among the D's, "Müller" as "Muller"."""
    return unicodedata.normalize("NFD", name).encode("ascii", "ignore").decode().lower()


def _permutation(order: Sequence[int], n: int) -> list[int]:
    """A permutation of range(n) driven by `order` (any list of ints)."""
    items = list(range(n))
    out = [items.pop(pick % len(items)) for pick in order[:n]]
    return out + items
