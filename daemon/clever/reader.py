"""Reading one Clever CSV's rows, with the line a text editor shows (`header` opens it)."""

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

from daemon.clever.files import FileSpec
from daemon.roster.problems import ProblemLog

# A quoted field that runs on past this many lines is almost surely a missing closing quote.
MAX_RECORD_LINES = 50
BATCH_ROWS = 10_000
LINE_BREAK = re.compile(r"\r\n|\r|\n")
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
    # (position, name as the header has it) of the columns never kept
    secret: list[tuple[int, str]] = field(default_factory=list)
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
        self, problems: ProblemLog, misshapen: Callable[[int, list[str]], None]
    ) -> Iterator[tuple[int, list[str]]]:
        """(line, fields) of each data row, one at a time (see `batches`)."""
        for lines, rows in self.batches(problems, misshapen):
            yield from zip(lines, rows, strict=True)

    def batches(
        self, problems: ProblemLog, misshapen: Callable[[int, list[str]], None]
    ) -> Iterator[tuple[Sequence[int], list[list[str]]]]:
        """Data rows with as many values as the header has columns, in batches, with the line
        each starts on.

        Blank rows are skipped and counted; a row of another width goes to `misshapen(line,
        fields)` after the rows before it were yielded (problems stay in line order); a runaway
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
                    misshapen(line, fields)
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


def line_breaks(fields: list[str]) -> int:
    """Line breaks inside quoted values: each makes its record one physical line longer."""
    return sum(len(LINE_BREAK.findall(value)) for value in fields)


def _record_lines(start: int, batch: list[list[str]]) -> list[int]:
    """The line each record of a batch starts on, when some records span several lines."""
    lines = []
    line = start
    for fields in batch:
        lines.append(line)
        line += 1 + line_breaks(fields)
    return lines
