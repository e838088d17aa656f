"""The careful checks of one OneRoster row's values, on top of the Clever ones (`clever.cells`):
enumerations, OneRoster's ISO dates, id lists, and error rows counted per roster entity."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date

from daemon.clever.cells import MAX_ID, Cells
from daemon.clever.reader import CsvFile
from daemon.roster.problems import ProblemLog
from daemon.roster.tenant import TenantSettings

NOUNS = {
    "orgs.csv": "school",
    "users.csv": "person",
    "roles.csv": "role",
    "academicSessions.csv": "session",
    "courses.csv": "course",
    "classes.csv": "section",
    "enrollments.csv": "enrollment",
}
STATUS = ("active", "tobedeleted", "inactive")  # inactive: OneRoster 1.0/1.1 only
ORG_TYPES = ("department", "school", "district", "local", "state", "national")
ROLES_11 = (
    "administrator",
    "aide",
    "guardian",
    "parent",
    "proctor",
    "relative",
    "student",
    "teacher",
)
ROLES_12 = (
    *ROLES_11,
    *("counselor", "districtAdministrator", "principal", "siteAdministrator"),
    "systemAdministrator",
)
ENROLLMENT_ROLES = (*("administrator", "proctor", "student", "teacher"), *("aide", "guardian"))
ENROLLMENT_ROLES_ALL = (*ENROLLMENT_ROLES, "parent", "relative")
SESSION_TYPES = ("gradingPeriod", "semester", "schoolYear", "term")
CLASS_TYPES = ("homeroom", "scheduled")
ROLE_TYPES = ("primary", "secondary")
BOOLEANS = ("true", "false")
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
# OneRoster's dateLastModified: an ISO 8601 time in UTC (the date alone is seen in the wild).
_ISO_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
)


class RowCells(Cells):
    """Cells whose error rows are counted per summary (`bucket`): a OneRoster file feeds
    several entities, and each line of the per-file table counts its own."""

    def __init__(self, settings: TenantSettings, problems: ProblemLog) -> None:
        super().__init__(settings, problems)
        self.error_rows: Counter[str] = Counter()
        self.bucket = ""

    def error(
        self, f: CsvFile, line: int, column: str | None, value: str | None, code: str, message: str
    ) -> None:
        shown = _header_name(f, column) if column else None
        if column and shown and message.startswith(column + " "):  # "givenName is required"
            message = shown + message[len(column) :]
        self.problems.error(code, message, file=f.name, line=line, column=shown, value=value)
        if self._last_error != (f.name, line):
            self._last_error = (f.name, line)
            self.error_rows[self.bucket or f.name] += 1

    def noun(self, f: CsvFile) -> str:
        return NOUNS.get(f.name, "record")

    def column_name(self, f: CsvFile, column: str) -> str:
        return _header_name(f, column)

    def enum(
        self,
        f: CsvFile,
        line: int,
        fields: list[str],
        column: str,
        allowed: tuple[str, ...],
        *,
        required: bool,
        drop: str,
        note: str | None = None,
    ) -> str | None:
        """The value as OneRoster spells it (matched case-insensitively: `Student`), "" when
        empty and optional, None (the problem logged) when it is none of `allowed`. With
        `note`, a bad value is a warning saying what became of it (`note`)."""
        value = self.text(f, line, fields, column, required=required, limit=MAX_ID, drop=drop)
        if not value:
            return value
        for word in allowed:
            if word.lower() == value.lower():
                return word
        shown = _header_name(f, column)
        message = f"{shown} {value!r} is not one of {', '.join(allowed)}"
        if note is not None:
            self.problems.warning(
                "bad_enum", f"{message}; {note}", file=f.name, line=line, column=shown,
                value=value,
            )  # fmt: skip
        else:
            self.bad(f, line, column, value, "bad_enum", message, drop)
        return None

    def iso_date(
        self, f: CsvFile, line: int, fields: list[str], column: str, *, required: bool, drop: str
    ) -> str | None:
        """A YYYY-MM-DD date (OneRoster allows no other form)."""
        value = self.text(f, line, fields, column, required=required, limit=MAX_ID, drop=drop)
        if not value:
            return value
        m = _ISO_DATE.fullmatch(value)
        try:
            if m is None:
                raise ValueError(value)
            return date(int(m[1]), int(m[2]), int(m[3])).isoformat()
        except ValueError:
            message = f"{_header_name(f, column)} {value!r} is not a date (OneRoster: YYYY-MM-DD)"
            self.bad(f, line, column, value, "bad_date", message, drop)
            return None

    def status(self, f: CsvFile, line: int, fields: list[str]) -> str | None:
        """The row's status ("" when empty); None: bad (an error, the row is skipped). Also
        checks dateLastModified, which costs nothing when bad (it is not imported)."""
        modified = (
            fields[f.index["datelastmodified"]].strip() if "datelastmodified" in f.index else ""
        )
        if modified and _ISO_TIME.fullmatch(modified) is None:
            message = (
                f"dateLastModified {modified!r} is not an ISO 8601 time"
                " (YYYY-MM-DDThh:mm:ss.sssZ); it is not imported, so nothing is lost"
            )
            self.problems.warning(
                "bad_date", message, file=f.name, line=line, column="dateLastModified",
                value=modified,
            )  # fmt: skip
        return self.enum(f, line, fields, "status", STATUS, required=False, drop="record")

    def id_list(self, f: CsvFile, line: int, fields: list[str], column: str) -> list[str] | None:
        """A comma-separated list of sourcedIds (`orgSourcedIds`, `termSourcedIds`)."""
        raw = self.text(f, line, fields, column, required=False, limit=100 * MAX_ID)
        if raw is None:
            return None
        ids = [part.strip() for part in raw.split(",") if part.strip()]
        for ident in ids:
            if len(ident) > MAX_ID:
                shown = _header_name(f, column)
                message = f"an id in {shown} is {len(ident)} characters long (at most {MAX_ID})"
                self.error(f, line, column, ident[:80] + "…", "too_long", message)
                return None
        return list(dict.fromkeys(ids))


def _header_name(f: CsvFile, column: str) -> str:
    """The column's name as the file's header spells it (`orgSourcedIds`)."""
    position = f.index.get(column)
    return f.header[position].strip() if position is not None else column
