"""The careful, row-by-row rules of the five files: the authority on what a row means.

A row with an error is skipped. When it still names a record of a school in the upload, that
key is *held*: the record keeps its current state instead of being deactivated, and the rows
that depend on it (all of a held school's) are skipped and held too. Rows pointing at a
school, section or student missing from the upload are not held: those parents are being
deactivated, and they follow.
"""

from __future__ import annotations

from collections.abc import Callable
from json.encoder import encode_basestring as json_string
from typing import Any

from daemon.clever.reader import CsvFile
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
from daemon.roster.problems import ProblemLog
from daemon.roster.tenant import TenantSettings

MAX_ID = 255
MAX_TEXT = 1000

Row = tuple[Any, ...]
Key = tuple[str, ...]
Write = Callable[[Row], None]


class _Notes:
    """Normalisation warnings: one per kind per file with a count, not one per row."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str, str, str], list[Any]] = {}

    def note(
        self, file: str, column: str, code: str, detail: str, line: int, value: str, count: int = 1
    ) -> None:
        entry = self._seen.setdefault((file, column, code, detail), [line, 0, value])
        if line < entry[0]:
            entry[0], entry[2] = line, value
        entry[1] += count

    def flush(self, problems: ProblemLog) -> None:
        for (file, column, code, detail), (line, count, value) in sorted(
            self._seen.items(), key=lambda item: item[1][0]
        ):
            rows = f"{count} row{'s' if count != 1 else ''}"
            message = f"{detail} on {rows} (first on line {line})"
            problems.warning(code, message, file=file, line=line, column=column, value=value)
        self._seen.clear()


class Checker:
    """What the files taught so far (ids, held keys) and the careful per-row checks."""

    def __init__(self, settings: TenantSettings, problems: ProblemLog) -> None:
        self.settings = settings
        self.problems = problems
        self.notes = _Notes()
        self.schools: set[str] = set()
        self.teachers: set[Key] = set()
        self.students: set[Key] = set()
        self.sections: set[Key] = set()
        self.held: dict[str, set[Key]] = {
            e.name: set() for e in (SCHOOLS, TEACHERS, STUDENTS, SECTIONS)
        }
        self.seen: dict[str, dict[Key, int]] = {name: {} for name in FILES}
        self.error_rows: dict[str, int] = dict.fromkeys(FILES, 0)
        self._last_error = ("", 0)
        self._grades = GradeRules(settings.grade_rules, use_common=settings.common_grade_rules)
        self._grade_cache: dict[str, str | None] = {}

    def known(self, entity: Entity) -> set[Key]:
        return self.teachers if entity is TEACHERS else self.students

    # -- values -----------------------------------------------------------------------------

    def error(
        self, f: CsvFile, line: int, column: str | None, value: str | None, code: str, message: str
    ) -> None:
        self.problems.error(code, message, file=f.name, line=line, column=column, value=value)
        if self._last_error != (f.name, line):  # count rows with errors, not errors
            self._last_error = (f.name, line)
            self.error_rows[f.name] += 1

    def text(
        self,
        f: CsvFile,
        line: int,
        fields: list[str],
        column: str,
        *,
        required: bool,
        limit: int = MAX_TEXT,
    ) -> str | None:
        """The cleaned value of `column`; None (with an error logged) when it is not acceptable."""
        raw = fields[f.index[column]] if column in f.index else ""
        value = raw.strip()
        if has_control(value):
            value = clean_text(value)
            detail = "line breaks or tabs inside the value replaced by spaces"
            self.notes.note(f.name, column, "whitespace_normalised", detail, line, raw)
        if not value:
            if required:
                self.error(f, line, column, raw, "missing_value", f"{column} is required")
                return None
            return ""
        if len(value) > limit:
            message = f"{column} is {len(value)} characters long (at most {limit})"
            self.error(f, line, column, value[:80] + "…", "too_long", message)
            return None
        return value

    def email(
        self, f: CsvFile, line: int, fields: list[str], column: str, *, required: bool
    ) -> str | None:
        value = self.text(f, line, fields, column, required=required)
        if not value:
            return value
        if not valid_email(value):
            message = f"{value!r} is not a valid email address"
            self.error(f, line, column, value, "bad_email", message)
            return None
        lowered = value.lower()
        if lowered != value:
            detail = "email addresses lower-cased"
            self.notes.note(f.name, column, "email_lowercased", detail, line, value)
        return lowered

    def grade_code(self, value: str) -> str | None:
        """The CEDS code a grade value maps to (memoised: a district uses a dozen values)."""
        if value not in self._grade_cache:
            self._grade_cache[value] = self._grades.normalise(value)
        return self._grade_cache[value]

    def note_grade(self, f: CsvFile, line: int, value: str, code: str, count: int = 1) -> None:
        detail = f"grade {value!r} replaced by {code!r}"
        self.notes.note(f.name, "grade", "grade_replaced", detail, line, value, count)

    def grade(self, f: CsvFile, line: int, fields: list[str]) -> str | None:
        value = self.text(f, line, fields, "grade", required=False, limit=MAX_ID)
        if not value:
            return value
        code = self.grade_code(value)
        if code is None:
            message = (
                f"grade {value!r} is not a CEDS grade code (IT, PR, PK, TK, KG, 01-13, PS, UG,"
                " Other) and no replace rule maps it"
            )
            self.error(f, line, "grade", value, "bad_grade", message)
            return None
        if code != value:
            self.note_grade(f, line, value, code)
        return code

    def note_date(self, f: CsvFile, column: str, line: int, value: str, count: int = 1) -> None:
        detail = "dates rewritten as YYYY-MM-DD"
        self.notes.note(f.name, column, "date_normalised", detail, line, value, count)

    def date(self, f: CsvFile, line: int, fields: list[str], column: str) -> str | None:
        value = self.text(f, line, fields, column, required=False, limit=MAX_ID)
        if not value:
            return value
        parsed = parse_date(value)
        if parsed is None:
            message = f"{value!r} is not a date (use YYYY-MM-DD, MM/DD/YYYY or YYYYMMDD)"
            self.error(f, line, column, value, "bad_date", message)
            return None
        iso = parsed.isoformat()
        if iso != value:
            self.note_date(f, column, line, value)
        return iso

    def extras_json(self, f: CsvFile, fields: list[str]) -> str | None:
        """Extra columns as a JSON object (keys sorted, so the same row gives the same text)."""
        if not f.extra or not self.settings.keep_extra_columns:
            return None
        pairs = [
            f"{json_string(name)}: {json_string(clean_text(fields[pos]))}"
            for pos, name in f.extra
            if fields[pos].strip()
        ]
        return "{" + ", ".join(pairs) + "}" if pairs else None

    # -- references -------------------------------------------------------------------------

    def duplicate(self, f: CsvFile, line: int, key: Key, column: str) -> bool:
        first = self.seen[f.name].setdefault(key, line)
        if first == line:
            return False
        school = f", school {key[0]!r}" if len(key) > 1 else ""
        message = f"{column} {key[-1]!r} appears again (first on line {first}{school}); skipped"
        self.error(f, line, column, key[-1], "duplicate_id", message)
        return True

    def school_held(self, f: CsvFile, line: int, school: str) -> bool:
        """Whether the row's school was skipped in schools.csv: then the row is held too
        (were the school new, its records would otherwise be imported without it)."""
        if (school,) not in self.held[SCHOOLS.name]:
            return False
        what = {TEACHERS.file: "teacher", STUDENTS.file: "student", SECTIONS.file: "section"}
        message = (
            f"school {school!r} was skipped in schools.csv,"
            f" so this {what.get(f.name, 'enrollment')} is too"
        )
        self.error(f, line, "school_id", school, "parent_skipped", message)
        return True

    def school_ref(self, f: CsvFile, line: int, school: str) -> bool:
        if school in self.schools:
            return True
        message = f"school_id {school!r} is not in schools.csv"
        self.error(f, line, "school_id", school, "unknown_school", message)
        return False

    def teacher_ref(self, f: CsvFile, line: int, column: str, school: str, teacher: str) -> bool:
        key = (school, teacher)
        if key in self.held[TEACHERS.name]:
            message = f"teacher {teacher!r} was skipped in teachers.csv, so this section is too"
            self.error(f, line, column, teacher, "parent_skipped", message)
            return False
        if key not in self.teachers:
            message = f"{column} {teacher!r} is not in teachers.csv for school {school!r}"
            self.error(f, line, column, teacher, "unknown_teacher", message)
            return False
        return True

    def hold(self, entity: Entity, write: Write, key: Key, line: int) -> None:
        """Skip a row but keep the record its key names as it is."""
        write((*key, *([None] * len(entity.fields)), line, True))
        if entity.name in self.held:
            self.held[entity.name].add(key)

    # -- one row of each file ---------------------------------------------------------------

    def school_row(self, f: CsvFile, line: int, fields: list[str], write: Write) -> None:
        school = self.text(f, line, fields, "school_id", required=True, limit=MAX_ID)
        name = self.text(f, line, fields, "school_name", required=True)
        if not school or self.duplicate(f, line, (school,), "school_id"):
            return
        if name is None:
            self.hold(SCHOOLS, write, (school,), line)
        else:
            self.schools.add(school)
            write((school, name, self.extras_json(f, fields), line, False))

    def person_row(
        self, f: CsvFile, entity: Entity, line: int, fields: list[str], write: Write
    ) -> None:
        student = entity is STUDENTS
        id_column = entity.key[1]
        email_column = "student_email" if student else "teacher_email"
        school = self.text(f, line, fields, "school_id", required=True, limit=MAX_ID)
        person = self.text(f, line, fields, id_column, required=True, limit=MAX_ID)
        if not school or not person:
            return
        key = (school, person)
        if self.duplicate(f, line, key, id_column):
            return
        if self.school_held(f, line, school):
            self.known(entity).add(key)
            self.hold(entity, write, key, line)
            return
        if not self.school_ref(f, line, school):
            return
        self.known(entity).add(key)
        first = self.text(f, line, fields, "first_name", required=True)
        last = self.text(f, line, fields, "last_name", required=True)
        email = self.email(f, line, fields, email_column, required=not student)
        values: tuple[str | None, ...] = (first, last, email)
        if student:
            username = self.text(f, line, fields, "username", required=False, limit=MAX_ID)
            grade = self.grade(f, line, fields)
            if email == "" and username == "":
                message = "a student needs a student_email or a username (both are empty)"
                self.error(f, line, email_column, "", "missing_login", message)
                username = None
            values = (first, last, email, username, grade)
        if any(v is None for v in values):
            self.hold(entity, write, key, line)
        else:
            write((*key, *values, self.extras_json(f, fields), line, False))

    def section_row(
        self, f: CsvFile, line: int, fields: list[str], write: Write, write_link: Write
    ) -> None:
        school = self.text(f, line, fields, "school_id", required=True, limit=MAX_ID)
        section = self.text(f, line, fields, "section_id", required=True, limit=MAX_ID)
        if not school or not section:
            return
        key = (school, section)
        if self.duplicate(f, line, key, "section_id"):
            return
        if self.school_held(f, line, school):
            self.sections.add(key)
            self.hold(SECTIONS, write, key, line)  # its teacher links stay as they are too
            return
        if not self.school_ref(f, line, school):
            return
        self.sections.add(key)
        primary = self.text(f, line, fields, "teacher_id", required=True, limit=MAX_ID)
        ok = primary is not None
        teachers: list[tuple[int, str]] = []
        columns = [(1, "teacher_id", primary or "")] + [
            (n, name, self.text(f, line, fields, name, required=False, limit=MAX_ID))
            for n, name in f.co_teachers
        ]
        for position, column, teacher in columns:
            if teacher is None:
                ok = False
            if not teacher:
                continue
            ok = self.teacher_ref(f, line, column, school, teacher) and ok
            if any(t == teacher for _, t in teachers):
                message = f"teacher {teacher!r} is listed twice on this section"
                self.problems.warning(
                    "repeated_teacher",
                    message,
                    file=f.name,
                    line=line,
                    column=column,
                    value=teacher,
                )
            else:
                teachers.append((position, teacher))
        course = self.text(f, line, fields, "course_name", required=True)
        start = self.date(f, line, fields, "term_start")
        end = self.date(f, line, fields, "term_end")
        if start and end and start > end:
            message = f"term_end {end} is before term_start {start}"
            self.error(f, line, "term_end", end, "term_order", message)
            ok = False
        if not ok or course is None or start is None or end is None:
            self.hold(SECTIONS, write, key, line)
            for _, teacher in teachers:
                if (school, teacher) in self.teachers:  # a teacher gone: their link goes
                    self.hold(SECTION_TEACHERS, write_link, (school, section, teacher), line)
            return
        extra = self.extras_json(f, fields)
        write((school, section, primary, course, start or None, end or None, extra, line, False))
        for position, teacher in teachers:
            write_link((school, section, teacher, position, line, False))

    def enrollment_row(self, f: CsvFile, line: int, fields: list[str], write: Write) -> None:
        school = self.text(f, line, fields, "school_id", required=True, limit=MAX_ID)
        section = self.text(f, line, fields, "section_id", required=True, limit=MAX_ID)
        student = self.text(f, line, fields, "student_id", required=True, limit=MAX_ID)
        if not school or not section or not student:
            return
        if self.school_held(f, line, school):
            self.hold(ENROLLMENTS, write, (school, section, student), line)
            return
        if not self.school_ref(f, line, school):
            return
        held = unknown = False
        parents = (("section_id", section, SECTIONS), ("student_id", student, STUDENTS))
        for column, ref, parent in parents:
            if (school, ref) in self.held[parent.name]:
                message = (
                    f"{column} {ref!r} was skipped in {parent.file}, so this enrollment is too"
                )
                self.error(f, line, column, ref, "parent_skipped", message)
                held = True
            elif (school, ref) not in (self.sections if parent is SECTIONS else self.students):
                message = f"{column} {ref!r} is not in {parent.file} for school {school!r}"
                self.error(f, line, column, ref, "unknown_reference", message)
                unknown = True
        if unknown:
            return
        if held:
            self.hold(ENROLLMENTS, write, (school, section, student), line)
        else:
            write((school, section, student, line, False))
