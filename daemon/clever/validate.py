"""Validating the five files: rows and cross-file references in, valid records and problems out.

Files stream through in parent-to-child order. Only the id sets needed for reference checks
stay in memory; records go to a sink (the database's staging tables) as they are read.

A row with an error is skipped. When its key is complete it is *held*: the sink is told the
key, so the record it names keeps its current state instead of being deactivated.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from daemon.clever.files import SPECS, FileFingerprint, FoundFiles, fingerprint
from daemon.clever.problems import ProblemLog
from daemon.clever.reader import CsvFile, open_csv
from daemon.clever.values import GradeRules, clean_text, has_control, parse_date, valid_email
from daemon.roster.entities import (
    ENROLLMENTS,
    FILES,
    SCHOOLS,
    SECTION_TEACHERS,
    SECTIONS,
    STUDENTS,
    TEACHERS,
    Entity,
)
from daemon.roster.outcome import FileSummary
from daemon.roster.tenant import TenantSettings

MAX_ID = 255
MAX_TEXT = 1000

Row = tuple[Any, ...]
Key = tuple[str, ...]


class SnapshotSink(Protocol):
    """Where valid (and held) records go. Implemented by the store's staging tables."""

    def writer(self, entity: Entity) -> Callable[[Row], None]:
        """A function taking `entity.stage_columns` tuples: fields, line, held."""
        ...

    def duplicates(self, entity: Entity) -> Iterable[tuple[int, int]]:
        """(line, first line) of rows whose key repeats an earlier row's; they are dropped."""
        ...


@dataclass
class Validation:
    """The result: per-file counts; problems went to the ProblemLog."""

    files: dict[str, FileSummary] = field(default_factory=dict)
    fatal: bool = False

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files.values())

    @property
    def error_rows(self) -> int:
        return sum(f.errors for f in self.files.values())


class _Notes:
    """Normalisation warnings, one per kind per file with a count, not one per row."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str, str, str], list[Any]] = {}

    def note(self, file: str, column: str, code: str, detail: str, line: int, value: str) -> None:
        entry = self._seen.get((file, column, code, detail))
        if entry is None:
            self._seen[(file, column, code, detail)] = [line, 1, value]
        else:
            entry[1] += 1

    def flush(self, problems: ProblemLog) -> None:
        for (file, column, code, detail), (line, count, value) in self._seen.items():
            rows = f"{count} row{'s' if count != 1 else ''}"
            problems.warning(
                code,
                f"{detail} on {rows} (first on line {line})",
                file=file,
                line=line,
                column=column,
                value=value,
            )
        self._seen.clear()


class Validator:
    def __init__(self, settings: TenantSettings, problems: ProblemLog, sink: SnapshotSink) -> None:
        self.settings = settings
        self.problems = problems
        self.sink = sink
        self.grades = GradeRules(settings.grade_rules, use_common=settings.common_grade_rules)
        self.notes = _Notes()
        self.schools: set[str] = set()
        self.teachers: set[Key] = set()
        self.students: set[Key] = set()
        self.sections: set[Key] = set()
        # Keys of rows skipped for errors: their children are skipped (and held) too.
        self.held: dict[str, set[Key]] = {e.name: set() for e in (TEACHERS, STUDENTS, SECTIONS)}
        self._summary: dict[str, list[int]] = {}  # file -> [rows read, rows with errors]
        self._row_failed = False

    # -- driving ----------------------------------------------------------------------------

    def run(self, found: FoundFiles, prints: dict[str, FileFingerprint]) -> Validation:
        result = Validation()
        for name in found.missing:
            self.problems.fatal(
                "missing_file", f"{name} is missing: all five files are required", file=name
            )
        for used, ignored in found.ignored_twins:
            self.problems.warning(
                "ignored_file",
                f"{ignored} was ignored: {used} is newer and has the same name",
                file=used,
            )
        if found.others:
            self.problems.warning(
                "other_files",
                "files that are not part of the Clever set were left alone: "
                + ", ".join(found.others),
            )
        opened: dict[str, CsvFile] = {}
        try:
            for name, path in found.files.items():
                csv_file = open_csv(
                    SPECS[name], path, prints[name], self.settings.fallback_encoding, self.problems
                )
                if csv_file is not None:
                    opened[name] = csv_file
            if self.problems.has_fatal():
                result.fatal = True
                return result
            steps: list[tuple[str, Callable[[CsvFile], None]]] = [
                ("schools.csv", self._schools),
                ("teachers.csv", self._teachers),
                ("students.csv", self._students),
                ("sections.csv", self._sections),
                ("enrollments.csv", self._enrollments),
            ]
            for name, step in steps:
                csv_file = opened[name]
                self._summary[name] = [0, 0]
                self._report_columns(csv_file)
                step(csv_file)
                self.notes.flush(self.problems)
                if csv_file.blank_rows:
                    self.problems.warning(
                        "blank_rows",
                        f"{csv_file.blank_rows} blank row(s) ignored (first on line"
                        f" {csv_file.first_blank_line})",
                        file=name,
                        line=csv_file.first_blank_line,
                    )
                if self.problems.has_fatal():
                    result.fatal = True
                    return result
                if self._summary[name][0] == 0:
                    self.problems.fatal(
                        "empty_file", "the file has a header but no data rows", file=name
                    )
                    result.fatal = True
                    return result
            self._report_duplicate_enrollments()
        finally:
            for csv_file in opened.values():
                csv_file.close()
        for name in FILES:
            rows, errors = self._summary[name]
            result.files[name] = FileSummary(
                name, rows, errors, self.problems.warnings_by_file[name]
            )
        return result

    def _report_columns(self, csv_file: CsvFile) -> None:
        if not csv_file.extra:
            return
        names = ", ".join(name for _, name in csv_file.extra)
        if csv_file.spec.filename != ENROLLMENTS.file and self.settings.keep_extra_columns:
            message = f"extra columns kept with each record: {names}"
        else:
            message = f"extra columns ignored: {names}"
        self.problems.warning(
            "extra_columns", message, file=csv_file.name, line=csv_file.header_line
        )

    # -- shared row checks ------------------------------------------------------------------

    def _error(
        self, file: str, line: int, column: str | None, value: str | None, code: str, message: str
    ) -> None:
        self.problems.error(code, message, file=file, line=line, column=column, value=value)
        self._row_failed = True

    def _rows(self, csv_file: CsvFile) -> Iterator[tuple[int, list[str]]]:
        """The well-formed rows; counts every row read and every row that had an error."""
        counts = self._summary[csv_file.name]
        width = csv_file.width
        for line, fields in csv_file.records(self.problems):
            counts[0] += 1
            if len(fields) != width:
                self._error(
                    csv_file.name,
                    line,
                    None,
                    None,
                    "wrong_field_count",
                    f"the row has {len(fields)} values but the header has {width} columns",
                )
            else:
                yield line, fields
            if self._row_failed:
                counts[1] += 1
                self._row_failed = False

    def _text(
        self,
        csv_file: CsvFile,
        line: int,
        fields: list[str],
        column: str,
        *,
        required: bool,
        limit: int = MAX_TEXT,
    ) -> str | None:
        """The cleaned value of `column`; None (with an error logged) when it is not acceptable."""
        raw = fields[csv_file.index[column]] if column in csv_file.index else ""
        value = raw.strip()
        if has_control(value):
            value = clean_text(value)
            self.notes.note(
                csv_file.name,
                column,
                "whitespace_normalised",
                "line breaks or tabs inside the value replaced by spaces",
                line,
                raw,
            )
        if not value:
            if required:
                self._error(
                    csv_file.name, line, column, raw, "missing_value", f"{column} is required"
                )
                return None
            return ""
        if len(value) > limit:
            self._error(
                csv_file.name,
                line,
                column,
                value[:80] + "…",
                "too_long",
                f"{column} is {len(value)} characters long (at most {limit})",
            )
            return None
        return value

    def _email(
        self, csv_file: CsvFile, line: int, fields: list[str], column: str, *, required: bool
    ) -> str | None:
        value = self._text(csv_file, line, fields, column, required=required)
        if not value:
            return value
        if not valid_email(value):
            self._error(
                csv_file.name,
                line,
                column,
                value,
                "bad_email",
                f"{value!r} is not a valid email address",
            )
            return None
        lowered = value.lower()
        if lowered != value:
            self.notes.note(
                csv_file.name,
                column,
                "email_lowercased",
                "email addresses lower-cased",
                line,
                value,
            )
        return lowered

    def _date(self, csv_file: CsvFile, line: int, fields: list[str], column: str) -> str | None:
        value = self._text(csv_file, line, fields, column, required=False, limit=MAX_ID)
        if not value:
            return value
        parsed = parse_date(value)
        if parsed is None:
            self._error(
                csv_file.name,
                line,
                column,
                value,
                "bad_date",
                f"{value!r} is not a date (use YYYY-MM-DD, MM/DD/YYYY or YYYYMMDD)",
            )
            return None
        iso = parsed.isoformat()
        if iso != value:
            self.notes.note(
                csv_file.name,
                column,
                "date_normalised",
                "dates rewritten as YYYY-MM-DD",
                line,
                value,
            )
        return iso

    def _extra(self, csv_file: CsvFile, fields: list[str]) -> str | None:
        if not csv_file.extra or not self.settings.keep_extra_columns:
            return None
        kept = {name: fields[pos].strip() for pos, name in csv_file.extra if fields[pos].strip()}
        return json.dumps(kept, sort_keys=True, ensure_ascii=False) if kept else None

    def _duplicate(
        self, csv_file: CsvFile, line: int, seen: dict[Key, int], key: Key, column: str
    ) -> bool:
        first = seen.get(key)
        if first is None:
            seen[key] = line
            return False
        self._error(
            csv_file.name,
            line,
            column,
            key[-1],
            "duplicate_id",
            f"{column} {key[-1]!r} appears again (first on line {first}"
            + (f", school {key[0]!r}" if len(key) > 1 else "")
            + "); this row is skipped",
        )
        return True

    def _school_ref(self, csv_file: CsvFile, line: int, school: str) -> bool:
        if school in self.schools:
            return True
        self._error(
            csv_file.name,
            line,
            "school_id",
            school,
            "unknown_school",
            f"school_id {school!r} is not in schools.csv",
        )
        return False

    def _hold(self, entity: Entity, write: Callable[[Row], None], key: Key, line: int) -> None:
        """Skip a row but keep the record its key names as it is."""
        write((*key, *([None] * len(entity.fields)), line, True))
        if entity.name in self.held:
            self.held[entity.name].add(key)

    # -- the five files -----------------------------------------------------------------------

    def _schools(self, f: CsvFile) -> None:
        write = self.sink.writer(SCHOOLS)
        seen: dict[Key, int] = {}
        for line, fields in self._rows(f):
            school = self._text(f, line, fields, "school_id", required=True, limit=MAX_ID)
            name = self._text(f, line, fields, "school_name", required=True)
            if not school or self._duplicate(f, line, seen, (school,), "school_id"):
                continue
            self.schools.add(school)
            if name is None:
                self._hold(SCHOOLS, write, (school,), line)
                continue
            write((school, name, self._extra(f, fields), line, False))

    def _person(self, f: CsvFile, entity: Entity, id_column: str) -> None:
        """Teachers and students: one row per school a person belongs to."""
        write = self.sink.writer(entity)
        known = self.teachers if entity is TEACHERS else self.students
        student = entity is STUDENTS
        email_column = "student_email" if student else "teacher_email"
        seen: dict[Key, int] = {}
        for line, fields in self._rows(f):
            school = self._text(f, line, fields, "school_id", required=True, limit=MAX_ID)
            person = self._text(f, line, fields, id_column, required=True, limit=MAX_ID)
            if not school or not person:
                continue
            key = (school, person)
            if self._duplicate(f, line, seen, key, id_column) or not self._school_ref(
                f, line, school
            ):
                continue
            known.add(key)
            first = self._text(f, line, fields, "first_name", required=True)
            last = self._text(f, line, fields, "last_name", required=True)
            email = self._email(f, line, fields, email_column, required=not student)
            values: tuple[str | None, ...]
            if student:
                username = self._text(f, line, fields, "username", required=False, limit=MAX_ID)
                grade = self._grade(f, line, fields)
                if email == "" and username == "":
                    self._error(
                        f.name,
                        line,
                        email_column,
                        "",
                        "missing_login",
                        "a student needs a student_email or a username (both are empty)",
                    )
                    email = None
                values = (first, last, email, username, grade)
            else:
                values = (first, last, email)
            if any(v is None for v in values):
                self._hold(entity, write, key, line)
                continue
            write((*key, *values, self._extra(f, fields), line, False))

    def _grade(self, f: CsvFile, line: int, fields: list[str]) -> str | None:
        value = self._text(f, line, fields, "grade", required=False, limit=MAX_ID)
        if not value:
            return value
        code = self.grades.normalise(value)
        if code is None:
            self._error(
                f.name,
                line,
                "grade",
                value,
                "bad_grade",
                f"grade {value!r} is not a CEDS grade code (IT, PR, PK, TK, KG, 01-13, PS, UG,"
                " Other) and no replace rule maps it",
            )
            return None
        if code != value:
            self.notes.note(
                f.name,
                "grade",
                "grade_replaced",
                f"grade {value!r} replaced by {code!r}",
                line,
                value,
            )
        return code

    def _teachers(self, f: CsvFile) -> None:
        self._person(f, TEACHERS, "teacher_id")

    def _students(self, f: CsvFile) -> None:
        self._person(f, STUDENTS, "student_id")

    def _sections(self, f: CsvFile) -> None:
        write = self.sink.writer(SECTIONS)
        write_link = self.sink.writer(SECTION_TEACHERS)
        held_teachers = self.held[TEACHERS.name]
        seen: dict[Key, int] = {}
        for line, fields in self._rows(f):
            school = self._text(f, line, fields, "school_id", required=True, limit=MAX_ID)
            section = self._text(f, line, fields, "section_id", required=True, limit=MAX_ID)
            if not school or not section:
                continue
            key = (school, section)
            if self._duplicate(f, line, seen, key, "section_id") or not self._school_ref(
                f, line, school
            ):
                continue
            self.sections.add(key)
            ok = True
            teachers: list[tuple[int, str]] = []
            primary = self._text(f, line, fields, "teacher_id", required=True, limit=MAX_ID)
            columns = [(1, "teacher_id", primary)] + [
                (n, f"teacher_{n}_id", fields[pos].strip()) for n, pos in f.co_teachers
            ]
            for position, column, teacher in columns:
                if teacher is None:
                    ok = False
                elif teacher:
                    ok = self._teacher_ref(f, line, column, school, teacher, held_teachers) and ok
                    if any(t == teacher for _, t in teachers):
                        self.problems.warning(
                            "repeated_teacher",
                            f"teacher {teacher!r} is listed twice on this section",
                            file=f.name,
                            line=line,
                            column=column,
                            value=teacher,
                        )
                    else:
                        teachers.append((position, teacher))
            course = self._text(f, line, fields, "course_name", required=True)
            start = self._date(f, line, fields, "term_start")
            end = self._date(f, line, fields, "term_end")
            if start and end and start > end:
                self._error(
                    f.name,
                    line,
                    "term_end",
                    end,
                    "term_order",
                    f"term_end {end} is before term_start {start}",
                )
                ok = False
            if not ok or course is None or start is None or end is None:
                self._hold(SECTIONS, write, key, line)
                for _position, teacher in teachers:
                    self._hold(SECTION_TEACHERS, write_link, (school, section, teacher), line)
                continue
            write(
                (
                    school,
                    section,
                    primary,
                    course,
                    start or None,
                    end or None,
                    self._extra(f, fields),
                    line,
                    False,
                )
            )
            for position, teacher in teachers:
                write_link((school, section, teacher, position, line, False))

    def _teacher_ref(
        self, f: CsvFile, line: int, column: str, school: str, teacher: str, held: set[Key]
    ) -> bool:
        key = (school, teacher)
        if key in self.teachers and key not in held:
            return True
        if key in held:
            self._error(
                f.name,
                line,
                column,
                teacher,
                "parent_skipped",
                f"teacher {teacher!r} was skipped in teachers.csv, so this section is too",
            )
        else:
            self._error(
                f.name,
                line,
                column,
                teacher,
                "unknown_teacher",
                f"{column} {teacher!r} is not in teachers.csv for school {school!r}",
            )
        return False

    def _enrollments(self, f: CsvFile) -> None:
        write = self.sink.writer(ENROLLMENTS)
        sections, students = self.sections, self.students
        held_sections, held_students = self.held[SECTIONS.name], self.held[STUDENTS.name]
        i_school, i_section, i_student = (
            f.index["school_id"],
            f.index["section_id"],
            f.index["student_id"],
        )
        for line, fields in self._rows(f):
            # The hot loop (most rows of an upload are enrollments): plain rows whose ids are
            # known as they stand take this short path; anything else gets the careful checks.
            school = fields[i_school]
            section_key = (school, fields[i_section])
            student_key = (school, fields[i_student])
            if (
                section_key in sections
                and student_key in students
                and section_key not in held_sections
                and student_key not in held_students
            ):
                write((school, section_key[1], student_key[1], line, False))
            else:
                self._enrollment_slow(f, line, fields, write)

    def _enrollment_slow(
        self, f: CsvFile, line: int, fields: list[str], write: Callable[[Row], None]
    ) -> None:
        school = self._text(f, line, fields, "school_id", required=True, limit=MAX_ID)
        section = self._text(f, line, fields, "section_id", required=True, limit=MAX_ID)
        student = self._text(f, line, fields, "student_id", required=True, limit=MAX_ID)
        if not school or not section or not student:
            return
        if not self._school_ref(f, line, school):
            return
        key = (school, section, student)
        # Held only when a parent was skipped for an error; a parent missing from the upload
        # is being deactivated, and its enrollments go with it.
        held, unknown = False, False
        for column, ref, known, held_keys, parent in (
            ("section_id", section, self.sections, self.held[SECTIONS.name], "sections.csv"),
            ("student_id", student, self.students, self.held[STUDENTS.name], "students.csv"),
        ):
            if (school, ref) in held_keys:
                self._error(
                    f.name,
                    line,
                    column,
                    ref,
                    "parent_skipped",
                    f"{column} {ref!r} was skipped in {parent}, so this enrollment is too",
                )
                held = True
            elif (school, ref) not in known:
                self._error(
                    f.name,
                    line,
                    column,
                    ref,
                    "unknown_reference",
                    f"{column} {ref!r} is not in {parent} for school {school!r}",
                )
                unknown = True
        if held and not unknown:
            self._hold(ENROLLMENTS, write, key, line)
        elif not held and not unknown:
            write((*key, line, False))

    def _report_duplicate_enrollments(self) -> None:
        for line, first in self.sink.duplicates(ENROLLMENTS):
            self.problems.warning(
                "duplicate_row",
                f"the same enrollment as line {first}; ignored",
                file=ENROLLMENTS.file,
                line=line,
            )


def validate(
    found: FoundFiles,
    prints: dict[str, FileFingerprint],
    settings: TenantSettings,
    problems: ProblemLog,
    sink: SnapshotSink,
) -> Validation:
    """Validate an upload's files into `sink`, logging every problem."""
    return Validator(settings, problems, sink).run(found, prints)


def fingerprints(found: FoundFiles) -> dict[str, FileFingerprint]:
    return {name: fingerprint(path) for name, path in found.files.items()}
