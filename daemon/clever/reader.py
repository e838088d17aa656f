"""Opening one Clever CSV: decoding, the header row, and rows with the line a text editor shows."""

from __future__ import annotations

import contextlib
import csv
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, islice
from operator import itemgetter
from pathlib import Path
from typing import IO

from daemon.clever.files import CO_TEACHER, FileFingerprint, FileSpec
from daemon.clever.values import is_secret
from daemon.roster.problems import ProblemLog

# A quoted field that runs on past this many lines is almost surely a missing closing quote.
MAX_RECORD_LINES = 50
# Clever's fullest export has about 30 columns: a header far wider is not a roster file, and
# reading its rows would cost memory in proportion.
MAX_COLUMNS = 1000
BATCH_ROWS = 10_000
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_BOM_AS_CP1252 = "\u00ef\u00bb\u00bf"
_EOF = "\x00end of file\n"
_EOF_RECORD = [_EOF[:-1]]


@dataclass
class CsvFile:
    """An open CSV whose header has been checked; iterate `records()` for the data rows."""

    spec: FileSpec
    path: Path
    encoding: str
    handle: IO[str]
    header: list[str]
    index: dict[str, int]  # normalised column name -> position
    extra: list[tuple[int, str]] = field(default_factory=list)
    co_teachers: list[tuple[int, str]] = field(default_factory=list)  # (N, column)
    secret: list[str] = field(default_factory=list)  # columns never read (as the header has them)
    header_line: int = 1
    rows: int = 0
    blank_rows: int = 0
    first_blank_line: int | None = None

    @property
    def name(self) -> str:
        return self.spec.filename

    @property
    def width(self) -> int:
        return len(self.header)

    def records(
        self, problems: ProblemLog, misshapen: Callable[[int, int], None]
    ) -> Iterator[tuple[int, list[str]]]:
        """(line, fields) of each data row, one at a time (see `batches`)."""
        for lines, rows in self.batches(problems, misshapen):
            yield from zip(lines, rows, strict=True)

    def batches(
        self, problems: ProblemLog, misshapen: Callable[[int, int], None]
    ) -> Iterator[tuple[Sequence[int], list[list[str]]]]:
        """Data rows with as many values as the header has columns, in batches, with the line
        each starts on.

        Blank rows are skipped and counted; a row of another width goes to `misshapen(line,
        width)` after the rows before it were yielded (problems stay in line order); a runaway
        quote or a CSV syntax error is fatal and ends the file. Work per row stays in C unless
        a batch holds something unusual.
        """
        # The sentinel line tells a quote left open at the end of the file (the csv module
        # then ends the record silently, its last value holding the rest of the file) from
        # a file that ends cleanly (the sentinel is a record of its own). NUL never gets here.
        reader = csv.reader(chain(self.handle, (_EOF,)))
        width = self.width
        # A required column set in every row rules out blank rows without looking at them all.
        key = itemgetter(self.index[self.spec.required[0]])
        end = self.header_line  # the physical line the previous batch ended on
        try:
            while batch := list(islice(reader, BATCH_ROWS)):
                start, end = end + 1, reader.line_num + self.header_line
                if batch[-1] == _EOF_RECORD:
                    batch.pop()
                    end -= 1
                    if not batch:
                        return
                elif batch[-1] and batch[-1][-1].endswith(_EOF):
                    batch[-1][-1] = batch[-1][-1][: -len(_EOF)]
                    end -= 1
                    self._runaway(problems, start, batch, end)
                    return
                if end - start + 1 == len(batch):  # one line per record: the common case
                    lines: Sequence[int] = range(start, end + 1)
                else:
                    lines = _record_lines(start, batch)
                    if self._too_long(problems, lines, batch):
                        return
                if all(map(width.__eq__, map(len, batch))) and (
                    all(map(key, batch)) or all(map(any, batch))  # no blank rows
                ):
                    self.rows += len(batch)
                    yield lines, batch
                    continue
                kept_lines: list[int] = []
                kept: list[list[str]] = []
                for line, fields in zip(lines, batch, strict=True):
                    if not any(fields):
                        self.blank_rows += 1
                        self.first_blank_line = self.first_blank_line or line
                        continue
                    self.rows += 1
                    if len(fields) == width:
                        kept_lines.append(line)
                        kept.append(fields)
                        continue
                    if kept:
                        yield kept_lines, kept
                        kept_lines, kept = [], []
                    misshapen(line, len(fields))
                if kept:
                    yield kept_lines, kept
        except csv.Error as exc:
            line = self._start_of_refused_record()
            if "field larger than field limit" in str(exc):
                problems.fatal(
                    "unbalanced_quote",
                    f"a quoted value opened on line {line} never closes: it runs on for more"
                    f" than {csv.field_size_limit():,} characters",
                    file=self.name,
                    line=line,
                )
            else:
                problems.fatal(
                    "malformed_csv",
                    f"the row on line {line} cannot be read as CSV ({exc})",
                    file=self.name,
                    line=line,
                )

    def _start_of_refused_record(self) -> int:
        """The line where the record the csv module refused starts: found by reading the file
        again (only on this error), since the error comes many lines after a runaway quote."""
        with self.path.open(encoding=self.encoding, newline="") as handle:
            lines = iter(handle)
            for _ in range(self.header_line):
                next(lines, None)
            reader = csv.reader(lines)
            last = 0
            with contextlib.suppress(csv.Error):
                for _ in reader:
                    last = reader.line_num
        return self.header_line + last + 1

    def _runaway(self, problems: ProblemLog, start: int, batch: list[list[str]], end: int) -> None:
        """The last record of the file opened a quote that never closed."""
        line = _record_lines(start, batch)[-1]
        problems.fatal(
            "unbalanced_quote",
            f"a quoted value opened on line {line} never closes: it swallows lines"
            f" {line}-{end}, the end of the file",
            file=self.name,
            line=line,
        )

    def _too_long(self, problems: ProblemLog, lines: Sequence[int], batch: list[list[str]]) -> bool:
        """A record spanning MAX_RECORD_LINES lines is a missing closing quote, whatever its
        width: fatal, since the rows it swallowed would silently go missing."""
        for line, fields in zip(lines, batch, strict=True):
            breaks = line_breaks(fields)
            if breaks >= MAX_RECORD_LINES:
                problems.fatal(
                    "unbalanced_quote",
                    f"a quoted value opened on line {line} never closes: it swallows"
                    f" lines {line}-{line + breaks}",
                    file=self.name,
                    line=line,
                )
                return True
        return False

    def close(self) -> None:
        self.handle.close()


def open_csv(
    spec: FileSpec,
    path: Path,
    fp: FileFingerprint,
    fallback_encoding: str,
    problems: ProblemLog,
    secret_words: tuple[str, ...] = (),
) -> CsvFile | None:
    """Open `path` and check its header; None (a fatal problem is logged) when unusable."""
    name = spec.filename
    if fp.utf16:
        message = 'the file is UTF-16 (Excel\'s "Unicode Text"): save it as "CSV UTF-8"'
        problems.fatal("not_utf8", message, file=name, line=1)
        return None
    if fp.has_nul:
        problems.fatal(
            "not_text", "the file contains NUL bytes: it is not a CSV text file", file=name
        )
        return None
    encoding = "utf-8-sig"
    if not fp.utf8:
        byte_hint = f"the first byte that is not UTF-8 is on line {fp.bad_line}"
        if fp.utf8_mixed:
            byte_hint = f"it mixes UTF-8 with other bytes: {byte_hint}, and either way"
            byte_hint += " some names would be garbled"
        if (
            not fallback_encoding
            or fp.utf8_mixed
            or (not fp.cp1252_ok and fallback_encoding == "windows-1252")
        ):
            problems.fatal(
                "not_utf8",
                f"the file is not UTF-8 ({byte_hint}); save or export it as UTF-8",
                file=name,
                line=fp.bad_line,
            )
            return None
        encoding = fallback_encoding
        problems.warning(
            "decoded_as_" + fallback_encoding.replace("-", ""),
            f"the file is not UTF-8 ({byte_hint}): it was read as {fallback_encoding.title()},"
            " the encoding Excel on Windows uses; check that names with accents look right",
            file=name,
            line=fp.bad_line,
        )
    handle = path.open(encoding=encoding, newline="")
    csv_file = _read_header(spec, path, encoding, handle, problems, secret_words)
    if csv_file is None:
        handle.close()
    return csv_file


def _read_header(
    spec: FileSpec,
    path: Path,
    encoding: str,
    handle: IO[str],
    problems: ProblemLog,
    secret_words: tuple[str, ...],
) -> CsvFile | None:
    name = spec.filename
    reader = csv.reader(handle)
    try:
        header = next((row for row in reader if any(cell.strip() for cell in row)), None)
    except csv.Error as exc:
        problems.fatal(
            "malformed_csv", f"the header cannot be read as CSV ({exc})", file=name, line=1
        )
        return None
    if header is None:
        problems.fatal("empty_file", "the file is empty (no header row, no data)", file=name)
        return None
    header_line = reader.line_num
    if header and header[0].startswith(_BOM_AS_CP1252):
        header[0] = header[0][len(_BOM_AS_CP1252) :]
    if len(header) > MAX_COLUMNS:
        problems.fatal(
            "too_many_columns",
            f"the header has {len(header):,} columns (at most {MAX_COLUMNS:,}): this is not a"
            " roster file",
            file=name,
            line=header_line,
        )
        return None
    normalised = [cell.strip().lower() for cell in header]
    if _other_format(spec, header, normalised, header_line, problems):
        return None
    if not any(col in normalised for col in spec.required):
        problems.fatal(
            "no_header",
            f"line {header_line} is not a header row; the first line must name the columns"
            f" ({', '.join(spec.required + spec.optional)})",
            file=name,
            line=header_line,
        )
        return None
    index: dict[str, int] = {}
    repeats: dict[str, list[int]] = {}
    for position, column in enumerate(normalised):
        if not column:
            continue
        if column in index:
            repeats.setdefault(column, [index[column] + 1]).append(position + 1)
        index[column] = position
    fatal = bool(repeats)
    if repeats:  # one problem for the whole header, however many names repeat
        shown = [f"{c!r} ({_positions(at)})" for c, at in list(repeats.items())[:5]]
        more = f" and {len(repeats) - 5:,} more" if len(repeats) > 5 else ""
        first = next(iter(repeats))
        problems.fatal(
            "duplicate_column",
            f"the header names {'a column' if len(repeats) == 1 else 'columns'} more than once:"
            f" {', '.join(shown)}{more}",
            file=name,
            line=header_line,
            column=header[repeats[first][1] - 1].strip(),
        )
    for column in spec.required:
        if column not in index:
            problems.fatal(
                "missing_column",
                f"required column {column!r} is missing from the header",
                file=name,
                line=header_line,
                column=column,
            )
            fatal = True
    if fatal:
        return None
    csv_file = CsvFile(spec, path, encoding, handle, header, index, header_line=header_line)
    for column, position in index.items():
        match = CO_TEACHER.fullmatch(column)
        if name == "sections.csv" and match and int(match[1]) >= 2:
            csv_file.co_teachers.append((int(match[1]), column))
        elif spec.known(column):
            continue
        elif is_secret(column, secret_words):
            csv_file.secret.append(header[position].strip())
        else:
            csv_file.extra.append((position, column))
    csv_file.co_teachers.sort()
    for column in csv_file.secret:
        problems.warning(
            "secret_column",
            f"column {column} was not kept: rosterdrop never reads or stores passwords and"
            " other secrets (the file as sent stays in this import's archive until retention"
            " removes it)",
            file=name,
            line=header_line,
            column=column,
        )
    absent = [column for column in spec.optional if column not in index]
    if absent:
        fallback = (
            " (each section's Name is used as its course name)"
            if "course_name" in absent and "name" in index
            else ""
        )
        problems.warning(
            "absent_column",
            f"optional column{'s' if len(absent) > 1 else ''} {', '.join(absent)}"
            f" {'are' if len(absent) > 1 else 'is'} not in the header: read as empty{fallback}",
            file=name,
            line=header_line,
        )
    csv_file.extra.sort(key=lambda item: item[1])  # JSON keys in a stable order
    unnamed = [str(p + 1) for p, column in enumerate(normalised) if not column]
    if unnamed:
        problems.warning(
            "unnamed_column",
            f"column{'s' if len(unnamed) > 1 else ''} {', '.join(unnamed)}"
            f" {'have' if len(unnamed) > 1 else 'has'} no name in the header and"
            f" {'are' if len(unnamed) > 1 else 'is'} ignored",
            file=name,
            line=header_line,
        )
    return csv_file


def _positions(at: list[int]) -> str:
    """Where a repeated name is: "columns 2 and 9", or "columns 2, 9, 12, … (900 times)"."""
    if len(at) == 2:
        return f"columns {at[0]} and {at[1]}"
    listed = ", ".join(map(str, at[:3]))
    return f"columns {listed}, … ({len(at):,} times)" if len(at) > 3 else f"columns {listed}"


# Columns that only a OneRoster CSV has: its files share three of Clever's five names.
_ONEROSTER = ("sourcedid", "classsourcedid", "usersourcedid", "orgsourcedid", "schoolsourcedid")


def _other_format(
    spec: FileSpec, header: list[str], normalised: list[str], line: int, problems: ProblemLog
) -> bool:
    """A file that is recognisably another roster format is named as such (fatal), rather
    than reported as a header that lacks Clever's columns."""
    marks = [header[i].strip() for i, column in enumerate(normalised) if column in _ONEROSTER]
    if not marks or any(column in normalised for column in spec.required[:2]):
        return False
    problems.fatal(
        "other_format",
        f"this is a OneRoster file (it has the column{'s' if len(marks) > 1 else ''}"
        f" {', '.join(marks)}), not a Clever one: set the SIS export to the Clever format"
        f" ({spec.filename} needs {', '.join(spec.required)})",
        file=spec.filename,
        line=line,
    )
    return True


def line_breaks(fields: list[str]) -> int:
    """Line breaks inside quoted values: each makes its record one physical line longer."""
    return sum(len(_LINE_BREAK.findall(value)) for value in fields)


def _record_lines(start: int, batch: list[list[str]]) -> list[int]:
    """The line each record of a batch starts on, when some records span several lines."""
    lines = []
    line = start
    for fields in batch:
        lines.append(line)
        line += 1 + line_breaks(fields)
    return lines
