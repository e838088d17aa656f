"""One row's values, checked the careful way: cleaned, validated, and what a bad one costs.

A bad value costs the record (an error: the row is skipped), only the value (a warning: the
record keeps the roster's value) or a teacher link (an error), as the caller says.
"""

from __future__ import annotations

from collections.abc import Callable
from json.encoder import encode_basestring as json_string
from typing import Any

from daemon.clever.reader import LINE_BREAK, CsvFile, line_breaks
from daemon.clever.values import (
    DATE_FORMATS,
    GradeRules,
    clean_text,
    grade_hint,
    has_control,
    parse_date,
    valid_email,
)
from daemon.roster.entities import ENROLLMENTS, FILES, SCHOOLS, SECTIONS, STUDENTS, TEACHERS, Entity
from daemon.roster.problems import ProblemLog
from daemon.roster.tenant import TenantSettings

MAX_ID = 255
MAX_TEXT = 1000

Row = tuple[Any, ...]
Key = tuple[str, ...]
Write = Callable[[Row], None]
Skip = Callable[[Entity, Row], None]
# What a bad value costs: the record (held when its key is whole), only the value, or a link.
RECORD, VALUE, LINK = "record", "value", "link"
NOUNS = {
    SCHOOLS.file: "school",
    TEACHERS.file: "teacher",
    STUDENTS.file: "student",
    SECTIONS.file: "section",
    ENROLLMENTS.file: "enrollment",
}


CONSEQUENCE = {
    RECORD: "the row is skipped",
    VALUE: "the value was not imported",
    LINK: "the teacher is not linked",
}


def looks_like_rows(value: str) -> bool:
    """A value whose later lines hold commas reads like CSV rows a stray quote took in; a
    two-line address ("12 Elm St" / "Apt 3") does not."""
    lines = LINE_BREAK.split(value)
    return len(lines) > 1 and any("," in rest for rest in lines[1:])


class Notes:
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

    def reorder(self, tie: Callable[[tuple[str, str, str, str], int, int], int]) -> None:
        """Order kinds first noted on the same line by `tie(kind, line, position)`, position
        being the order they were noted in: the columnar engine notes its plain rows' kinds
        after the careful rows', so it says in which order a row-by-row pass would have."""
        items = list(self._seen.items())
        order = sorted(
            range(len(items)), key=lambda i: (items[i][1][0], tie(items[i][0], items[i][1][0], i))
        )
        self._seen = {items[i][0]: items[i][1] for i in order}

    def flush(self, problems: ProblemLog) -> None:
        for (file, column, code, detail), (line, count, value) in sorted(
            self._seen.items(), key=lambda item: item[1][0]
        ):
            rows = f"{count:,} row{'s' if count != 1 else ''}"
            message = f"{detail} on {rows} (first on line {line})"
            problems.warning(code, message, file=file, line=line, column=column, value=value)
        self._seen.clear()


class Cells:
    """The careful checks of one row's values, and the rows with errors counted per file."""

    def __init__(self, settings: TenantSettings, problems: ProblemLog) -> None:
        self.settings = settings
        self.problems = problems
        self.notes = Notes()
        self.error_rows: dict[str, int] = dict.fromkeys(FILES, 0)
        self._last_error = ("", 0)
        self._grades = GradeRules(settings.grade_rules, use_common=settings.common_grade_rules)
        self._grade_cache: dict[str, str | None] = {}

    def error(
        self, f: CsvFile, line: int, column: str | None, value: str | None, code: str, message: str
    ) -> None:
        self.problems.error(code, message, file=f.name, line=line, column=column, value=value)
        if self._last_error != (f.name, line):  # count rows with errors, not errors
            self._last_error = (f.name, line)
            self.error_rows[f.name] += 1

    def bad(
        self,
        f: CsvFile,
        line: int,
        column: str,
        value: str,
        code: str,
        message: str,
        drop: str,
    ) -> None:
        """A value that cannot be imported: an error when it costs the record or a link, a
        warning when only the value is dropped."""
        if drop == VALUE:
            noun, shown = self.noun(f), self.column_name(f, column)
            message += (
                f"; the value was not imported: the {noun} keeps the {shown} the roster has"
                " (none if new)"
            )
            self.problems.warning(code, message, file=f.name, line=line, column=shown, value=value)
        else:
            self.error(f, line, column, value, code, message)

    def noun(self, f: CsvFile) -> str:
        """What a row of `f` is ("student"), as messages say it (another format's files)."""
        return NOUNS[f.name]

    def column_name(self, f: CsvFile, column: str) -> str:
        """A column as problems name it: Clever's names are already as they should read."""
        return column

    def text(
        self,
        f: CsvFile,
        line: int,
        fields: list[str],
        column: str,
        *,
        required: bool,
        limit: int = MAX_TEXT,
        drop: str = RECORD,
    ) -> str | None:
        """The cleaned value of `column`: "" when empty and optional, None (the problem
        logged) when it is not acceptable."""
        raw = fields[f.index[column]] if column in f.index else ""
        value = raw.strip()
        if "\n" in value or "\r" in value:
            # No Clever value spans lines: this one most likely took in the rows after it,
            # its quote closed only there (a stray quote before "Smith, Jr." nine lines on).
            # An error whatever the column: the rows it swallowed are missing from the file.
            self.spanning(f, line, fields, column, CONSEQUENCE[drop])
            return None
        if has_control(value):  # tabs and the like: line breaks never get here
            value = clean_text(value)
            detail = "tabs or control characters inside the value replaced by spaces"
            self.notes.note(f.name, column, "whitespace_normalised", detail, line, raw)
        if not value:
            if required:
                self.error(f, line, column, raw, "missing_value", f"{column} is required")
                return None
            return ""
        if len(value) > limit:
            message = f"{column} is {len(value)} characters long (at most {limit})"
            self.bad(f, line, column, value[:80] + "…", "too_long", message, drop)
            return None
        return value

    def spanning(
        self,
        f: CsvFile,
        line: int,
        fields: list[str],
        column: str,
        consequence: str,
    ) -> None:
        """A value with line breaks in it: the lines it ran over are named and no part of it
        is quoted (past the quote it holds the rest of its row and other rows, their
        passwords among them)."""
        end = line + line_breaks(fields)
        message = (
            f"{column} runs over lines {line}-{end}: a value with a line break in it; if a quote"
            f" was left open there, the rows in between were read as part of it; {consequence}"
        )
        self.error(f, line, column, None, "line_break_in_value", message)

    def other_columns(self, f: CsvFile, line: int, fields: list[str]) -> None:
        """Extra and secret columns are not checked value by value, but one that looks like
        rows swallowed by a stray quote is an error: those rows are missing from the file."""
        for position, name in f.extra:
            if looks_like_rows(fields[position]):
                self.spanning(f, line, fields, name, CONSEQUENCE[VALUE])
        for position, name in f.secret:
            if looks_like_rows(fields[position]):
                self.spanning(f, line, fields, name, "the column is never kept")

    def email(
        self, f: CsvFile, line: int, fields: list[str], column: str, *, required: bool, drop: str
    ) -> str | None:
        value = self.text(f, line, fields, column, required=required, drop=drop)
        if not value:
            return value
        if not valid_email(value):
            message = f"{value!r} is not a valid email address"
            self.bad(f, line, column, value, "bad_email", message, drop)
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
        value = self.text(f, line, fields, "grade", required=False, limit=MAX_ID, drop=VALUE)
        if not value:
            return value
        code = self.grade_code(value)
        if code is None:
            message = (
                f"grade {value!r} is not a CEDS grade code (IT, PR, PK, TK, KG, 01-13, PS, UG,"
                f" Other) and no replace rule maps it{grade_hint(value)}"
            )
            self.bad(f, line, "grade", value, "bad_grade", message, VALUE)
            return None
        if code != value:
            self.note_grade(f, line, value, code)
        return code

    def note_date(self, f: CsvFile, column: str, line: int, value: str, count: int = 1) -> None:
        detail = "dates rewritten as YYYY-MM-DD"
        self.notes.note(f.name, column, "date_normalised", detail, line, value, count)

    def date(self, f: CsvFile, line: int, fields: list[str], column: str) -> str | None:
        value = self.text(f, line, fields, column, required=False, limit=MAX_ID, drop=VALUE)
        if not value:
            return value
        parsed = parse_date(value)
        if parsed is None:
            message = f"{value!r} is not a date (use {DATE_FORMATS})"
            self.bad(f, line, column, value, "bad_date", message, VALUE)
            return None
        iso = parsed.isoformat()
        if iso != value:
            self.note_date(f, column, line, value)
        return iso

    def extras_json(self, f: CsvFile, line: int, fields: list[str]) -> str | None:
        """Extra columns as a JSON object (keys sorted, so the same row gives the same text)."""
        if not f.extra or not self.settings.keep_extra_columns:
            return None
        pairs = []
        for pos, name in f.extra:
            value = fields[pos]
            if not value.strip() or looks_like_rows(value):  # the latter: other_columns says so
                continue
            if has_control(value):
                detail = "line breaks or tabs inside the value replaced by spaces"
                self.notes.note(f.name, name, "whitespace_normalised", detail, line, value)
            pairs.append(f"{json_string(name)}: {json_string(clean_text(value))}")
        return "{" + ", ".join(pairs) + "}" if pairs else None
