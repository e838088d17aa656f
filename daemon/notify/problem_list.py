"""The problems an email lists: the first few as lines, all of them as a size-capped CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from daemon.notify.figures import plural
from daemon.roster.problems import Problem, Severity, formula_safe

ATTACHMENT_LIMIT_BYTES = 5 * 1024 * 1024
SHOWN_PROBLEMS = 20
VALUE_CHARS = 80
MESSAGE_CHARS = 300
# Excel, which most district staff open a CSV with, reads UTF-8 names correctly only with a BOM.
UTF8_BOM = "\ufeff".encode()

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ProblemLine:
    location: str  # file:line:column, as much of it as is known
    severity: str
    message: str
    value: str | None


@dataclass(frozen=True)
class Attachment:
    filename: str
    data: bytes
    rows: int  # data rows (problems) it holds
    complete: bool


@dataclass(frozen=True)
class ProblemSection:
    lines: tuple[ProblemLine, ...]
    total: int
    summary: str  # "3 errors, 1 warning"
    attachment: Attachment | None
    note: str  # what the attachment holds, or why there is none


def problem_section(
    problems: Sequence[Problem],
    totals: Mapping[str, int],
    report_csv: Path | None,
    filename: str,
    limit: int = ATTACHMENT_LIMIT_BYTES,
) -> ProblemSection:
    total = max(sum(totals.values()), len(problems))
    lines = tuple(_line(p) for p in problems[:SHOWN_PROBLEMS])
    attachment = _attachment(report_csv, filename, limit) if total else None
    if not total:
        note = ""
    elif attachment is None:
        note = "The complete list of problems could not be attached: its file is not available."
    elif attachment.complete:
        note = f"The complete list of problems is attached as {filename}."
    else:
        kept = plural(attachment.rows, "problem")
        note = (
            f"The attached {filename} holds only the first {kept} of {total:,}:"
            f" the whole list is larger than {limit / 1024 / 1024:g} MB. "
            f"The complete list is on the rosterdrop server at {report_csv}; "
            "your rosterdrop operator can send it to you."
        )
    return ProblemSection(lines, total, _summary(totals), attachment, note)


def location(problem: Problem) -> str:
    parts = [problem.file or "", str(problem.line) if problem.line else "", problem.column or ""]
    while parts and not parts[-1]:
        parts.pop()
    return ":".join(parts) or "the upload"


def _line(problem: Problem) -> ProblemLine:
    value = problem.value
    return ProblemLine(
        location=location(problem),
        severity=str(problem.severity),
        message=_clip(problem.message, MESSAGE_CHARS),
        value=_clip(value, VALUE_CHARS) if value else None,
    )


def _summary(totals: Mapping[str, int]) -> str:
    parts = [plural(totals[str(s)], str(s)) for s in Severity if totals.get(str(s))]
    return ", ".join(parts)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _attachment(path: Path | None, filename: str, limit: int) -> Attachment | None:
    if path is None:
        return None
    try:
        return _rewrite(path, filename, limit)
    except OSError as exc:
        log.warning("notify.problem_list_unreadable", path=str(path), error=str(exc))
        return None


def _rewrite(path: Path, filename: str, limit: int) -> Attachment:
    """The header and as many whole rows as fit: parsed, so a quoted line break never splits,
    and every cell made formula-safe again, so a report written before that rule (an archived
    import's) is no more dangerous to open than a new one."""
    line = io.StringIO()
    writer = csv.writer(line)
    chunks = [UTF8_BOM]
    size, rows, complete = len(UTF8_BOM), -1, True  # rows: the header is not a problem
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as source:
        for row in csv.reader(source):
            line.seek(0)
            line.truncate()
            writer.writerow(map(formula_safe, row))
            encoded = line.getvalue().encode()
            if size + len(encoded) > limit and rows >= 0:
                complete = False
                break
            chunks.append(encoded)
            size += len(encoded)
            rows += 1
    return Attachment(filename, b"".join(chunks), max(rows, 0), complete=complete)
