"""The problems an email lists: the first few as lines, all of them as a size-capped CSV.

Problems that differ only in their line (seven enrollments of one skipped student) share a
line in the email, so its first screen shows different problems; the CSV keeps one row each."""

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
SHOWN_PROBLEMS = 20  # lines in the email: single problems or groups of repeated ones
SHOWN_LINE_NUMBERS = 3  # of a group's lines, the first few are named
SHOWN_VALUES = 3
VALUE_CHARS = 80
MESSAGE_CHARS = 300
# Excel, which most district staff open a CSV with, reads UTF-8 names correctly only with a BOM.
UTF8_BOM = "\ufeff".encode()

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ProblemLine:
    location: str  # file:line:column, as much of it as is known (a group's has no line)
    severity: str
    message: str
    value: str | None  # the value, when every problem of the line has the same one
    repeats: str = ""  # a group's "7 rows, lines 10, 11, 14 and 4 more"
    values: tuple[str, ...] = ()  # a group's first different values, when they differ
    more_values: int = 0  # how many different values there are beyond `values`


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
    heading: str = ""  # how the lines are grouped, said before them
    rest: str = ""  # what the lines leave out, said after them


def problem_section(
    problems: Sequence[Problem],
    totals: Mapping[str, int],
    report_csv: Path | None,
    filename: str,
    limit: int = ATTACHMENT_LIMIT_BYTES,
) -> ProblemSection:
    total = max(sum(totals.values()), len(problems))
    groups = _groups(problems)
    shown = groups[:SHOWN_PROBLEMS]
    lines = tuple(_line(group) for group in shown)
    heading, rest = _framing(groups, len(problems), total)
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
    return ProblemSection(lines, total, _summary(totals), attachment, note, heading, rest)


def problem_lines(problems: Sequence[Problem]) -> list[ProblemLine]:
    """Every line the problems make, grouped as the emails group them (the web pages them)."""
    return [_line(group) for group in _groups(problems)]


def formula_safe_report(path: Path, filename: str, limit: int) -> Attachment | None:
    """The report CSV at `path` as a download: formula-safe, whole rows up to `limit` bytes."""
    return _attachment(path, filename, limit)


def location(problem: Problem, *, with_line: bool = True) -> str:
    """file:line:column; a group's is file:column, its lines said apart."""
    if not with_line:
        return ":".join(p for p in (problem.file, problem.column) if p) or "the upload"
    parts = [problem.file or "", str(problem.line) if problem.line else "", problem.column or ""]
    while parts and not parts[-1]:
        parts.pop()
    return ":".join(parts) or "the upload"


class _Group:
    """Problems alike in all but line and value, in the order the first of them was found."""

    def __init__(self, first: Problem) -> None:
        self.first = first
        self.count = 0
        self.lines: list[int] = []  # distinct, as found
        self.values: list[str] = []  # distinct, as found
        self._seen_lines: set[int] = set()
        self._seen_values: set[str] = set()

    def add(self, problem: Problem) -> None:
        self.count += 1
        if problem.line and problem.line not in self._seen_lines:
            self._seen_lines.add(problem.line)
            self.lines.append(problem.line)
        value = problem.value or ""
        if value not in self._seen_values:
            self._seen_values.add(value)
            self.values.append(value)


def _groups(problems: Sequence[Problem]) -> list[_Group]:
    groups: dict[tuple[object, ...], _Group] = {}
    for p in problems:
        key = (p.severity, p.code, p.file, p.column, p.message)
        groups.setdefault(key, _Group(p)).add(p)
    return list(groups.values())


def _line(group: _Group) -> ProblemLine:
    first = group.first
    message = _clip(first.message, MESSAGE_CHARS)
    if group.count == 1:
        value = first.value
        return ProblemLine(
            location(first), str(first.severity), message, _clip(value, VALUE_CHARS) or None
        )
    one_value = group.values[0] if len(group.values) == 1 else None
    values = [] if one_value is not None else [v for v in group.values if v]
    return ProblemLine(
        location=location(first, with_line=False),
        severity=str(first.severity),
        message=message,
        value=_clip(one_value, VALUE_CHARS) or None,
        repeats=_repeats(group),
        values=tuple(_clip(v, VALUE_CHARS) for v in values[:SHOWN_VALUES]),
        more_values=max(0, len(values) - SHOWN_VALUES),
    )


def _repeats(group: _Group) -> str:
    """A group's size and lines ("7 rows, lines 10, 11, 14 and 4 more"), or "3 times"."""
    if len(group.lines) != group.count:
        return f"{group.count:,} times"
    named = [str(n) for n in group.lines[:SHOWN_LINE_NUMBERS]]  # a line number is no count
    more = group.count - len(named)
    listed = ", ".join(named) + f" and {more:,} more" if more else _and(named)
    return f"{plural(group.count, 'row')}, lines {listed}"


def _framing(groups: Sequence[_Group], kept: int, total: int) -> tuple[str, str]:
    """What to say before the lines (how they were grouped) and after them (what is left)."""
    heading = ""
    if any(g.count > 1 for g in groups):
        heading = "Problems that repeat on several rows are shown once, with their lines."
        if kept < total:  # only the first problems were kept: later repeats are not counted
            heading += f" They are counted among the first {kept:,} of the {total:,} problems."
    shown = groups[:SHOWN_PROBLEMS]
    left = total - sum(g.count for g in shown)
    if not left:
        return heading, ""
    rest = f"Not shown here: {plural(left, 'more problem')}"
    if kept >= total:  # every problem is at hand, so the groups left out are known
        rest += f", in {plural(len(groups) - len(shown), 'more line')}"
    return heading, rest + "."


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _summary(totals: Mapping[str, int]) -> str:
    parts = [plural(totals[str(s)], str(s)) for s in Severity if totals.get(str(s))]
    return ", ".join(parts)


def _clip(text: str | None, limit: int) -> str:
    text = text or ""
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
        reader = csv.reader(source)
        try:
            for row in reader:
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
        except csv.Error as exc:
            # A report written before problems were bounded may hold a field past the csv
            # module's limit: that costs the rest of the list, never the email.
            log.warning("notify.problem_list_cut", path=str(path), error=str(exc))
            complete = False
    return Attachment(filename, b"".join(chunks), max(rows, 0), complete=complete)
