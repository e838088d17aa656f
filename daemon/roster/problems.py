"""Problems found in an upload, and the log that counts, keeps and streams them.

The record of a problem belongs to the domain: every input format reports in these terms."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

KEEP_PROBLEMS = 1000
# What one problem may hold: a header of 700,000 names must not make a message that every
# later reader (the report CSV, the emails, the database) chokes on.
MAX_MESSAGE_CHARS = 1000
MAX_VALUE_CHARS = 1000
IDENTICAL_UPLOAD = "identical_upload"
REPORT_COLUMNS = ("severity", "code", "file", "line", "column", "value", "message")
# What makes Excel, LibreOffice or Google Sheets read a cell as a formula (OWASP's CSV
# injection list), with the full-width forms that Excel treats as the same characters.
FORMULA_TRIGGERS = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")


class Severity(StrEnum):
    FATAL = "fatal"  # the whole import fails; nothing is applied
    ERROR = "error"  # the row is skipped
    WARNING = "warning"  # reported; the row is imported


@dataclass(frozen=True, slots=True)
class Problem:
    severity: Severity
    code: str
    message: str
    file: str | None = None
    line: int | None = None
    column: str | None = None
    value: str | None = None

    @property
    def where(self) -> str:
        parts = [p for p in (self.file, self.line and str(self.line)) if p]
        where = ":".join(parts)
        if self.column:
            where = f"{where} column {self.column}" if where else f"column {self.column}"
        return where

    def __str__(self) -> str:
        where = self.where
        return (
            f"{self.severity}: {where}: {self.message}"
            if where
            else f"{self.severity}: {self.message}"
        )

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = str(self.severity)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Problem:
        return cls(**{**data, "severity": Severity(data["severity"])})


def formula_safe(cell: object) -> str:
    """A CSV cell that no spreadsheet evaluates: one that would start a formula gets a
    leading single quote. Spreadsheets trim leading spaces before they look, so a trigger
    after whitespace counts too (`" =1"`, `"\\t=2+2"`)."""
    text = "" if cell is None else str(cell)
    if text[:1] in FORMULA_TRIGGERS or text.lstrip()[:1] in FORMULA_TRIGGERS:
        return "'" + text
    return text


class ProblemLog:
    """Counts every problem, keeps the first few, and streams all of them to a CSV report.

    Memory stays flat however many rows are broken: only `keep` problems are held.
    """

    def __init__(self, report: IO[str] | None = None, keep: int = KEEP_PROBLEMS) -> None:
        self.kept: list[Problem] = []
        self.keep = keep
        self.by_severity: Counter[Severity] = Counter()
        self.errors_by_file: Counter[str] = Counter()
        self.warnings_by_file: Counter[str] = Counter()
        self._report = report
        self._writer = csv.writer(report) if report is not None else None
        if self._writer is not None:
            self._writer.writerow(REPORT_COLUMNS)

    def add(self, problem: Problem) -> None:
        problem = _bounded(problem)
        self.by_severity[problem.severity] += 1
        if problem.file:
            if problem.severity is Severity.ERROR:
                self.errors_by_file[problem.file] += 1
            elif problem.severity is Severity.WARNING:
                self.warnings_by_file[problem.file] += 1
        # The first fatal problem and the identical-upload note explain the whole import:
        # kept past the cap. Nothing else is, however many fatal problems a file has.
        if (
            len(self.kept) < self.keep
            or (problem.severity is Severity.FATAL and self.by_severity[Severity.FATAL] == 1)
            or problem.code == IDENTICAL_UPLOAD
        ):
            self.kept.append(problem)
        self._write(problem)

    def _write(self, problem: Problem) -> None:
        if self._writer is not None:
            self._writer.writerow(
                map(
                    formula_safe,
                    [
                        problem.severity,
                        problem.code,
                        problem.file or "",
                        problem.line or "",
                        problem.column or "",
                        problem.value or "",
                        problem.message,
                    ],
                )
            )

    def flush(self) -> None:
        """Make the report file whole for a reader while it is still open for writing."""
        if self._report is not None:
            self._report.flush()

    def repeat(
        self, kept: Sequence[Problem], totals: Mapping[str, int], report: Path | None
    ) -> None:
        """Log again everything an earlier import found, exactly: its totals, the problems it
        kept, and its whole report copied as text (never parsed back, so no reader limit can
        refuse what the writer wrote). A repeated `identical_upload` is left out: one such
        warning, not one a day."""
        repeated = Counter({Severity(s): n for s, n in totals.items()})
        for problem in kept:
            if problem.code == IDENTICAL_UPLOAD:
                repeated[problem.severity] -= 1
            elif len(self.kept) < self.keep:
                self.kept.append(problem)
        self.by_severity.update(repeated)
        if self._report is None:
            return
        if report is None or not report.exists():  # expired from the archive: what was kept
            for problem in kept:
                if problem.code != IDENTICAL_UPLOAD:
                    self._write(problem)
            return
        self._report.flush()
        with report.open(encoding="utf-8", newline="") as source:
            source.readline()  # the header
            held_back = ""
            for line in source:
                self._report.write(held_back)
                held_back = line
            if not held_back.startswith(f"{Severity.WARNING},{IDENTICAL_UPLOAD},"):
                self._report.write(held_back)

    def extend(self, problems: Iterable[Problem]) -> None:
        for problem in problems:
            self.add(problem)

    def fatal(self, code: str, message: str, **where: Any) -> None:
        self.add(Problem(Severity.FATAL, code, message, **where))

    def error(self, code: str, message: str, **where: Any) -> None:
        self.add(Problem(Severity.ERROR, code, message, **where))

    def warning(self, code: str, message: str, **where: Any) -> None:
        self.add(Problem(Severity.WARNING, code, message, **where))

    def has_fatal(self) -> bool:
        return self.by_severity[Severity.FATAL] > 0

    @property
    def error_count(self) -> int:
        return self.by_severity[Severity.ERROR]

    @property
    def total(self) -> int:
        return sum(self.by_severity.values())

    def fatals(self) -> Iterator[Problem]:
        return (p for p in self.kept if p.severity is Severity.FATAL)

    def totals(self) -> dict[str, int]:
        return {str(s): self.by_severity[s] for s in Severity}


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"


def _bounded(problem: Problem) -> Problem:
    message, value = problem.message, problem.value
    if len(message) <= MAX_MESSAGE_CHARS and (value is None or len(value) <= MAX_VALUE_CHARS):
        return problem
    return replace(
        problem,
        message=clip(message, MAX_MESSAGE_CHARS),
        value=None if value is None else clip(value, MAX_VALUE_CHARS),
    )
