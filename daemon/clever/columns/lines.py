"""The line a text editor shows for each record, counted from the raw bytes.

The csv module ends a line at CR, LF or CRLF; so does this count. When the file has one line
per record the answer is record + 2; otherwise each record's line breaks (inside quoted
values) and each row of another width (pyarrow sets it aside, with its line) push the records
after it down, and together they must account for every line of the file.
"""

from __future__ import annotations

from typing import NamedTuple

import polars as pl

from daemon.clever.reader import MAX_RECORD_LINES

LINE_BREAK = r"\r\n|\r|\n"


class Refused(NamedTuple):
    """A row pyarrow set aside (another width): which record of the file it is (0: the
    first after the header) and its line breaks."""

    record: int
    breaks: int


def physical_lines(data: bytearray, size: int) -> int:
    """The lines of `data[:size]` (what follows is NUL bytes: no line break)."""
    breaks = data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")
    return breaks + (0 if size and data[size - 1] in b"\r\n" else 1)


def record_lines(
    frame: pl.DataFrame, refused: list[Refused], total: int
) -> tuple[pl.Series, list[int]] | None:
    """Where each record of the frame starts (the header is line 1), and each row set aside;
    None when the lines do not add up or a record runs over MAX_RECORD_LINES lines (a quote
    left open: the careful reader's fatal problem)."""
    rows = frame.height
    index = pl.int_range(0, rows, dtype=pl.Int64, eager=True)
    if total == rows + 1 and not refused:
        return (index + 2).alias("line"), []
    breaks = _breaks(frame)
    longest = max([int(breaks.max() or 0), *(r.breaks for r in refused)])  # type: ignore[arg-type]
    spans = sum(1 + r.breaks for r in refused)
    if longest >= MAX_RECORD_LINES or 1 + rows + int(breaks.sum()) + spans != total:
        return None
    before = breaks.cum_sum() - breaks  # line breaks of the frame's records before each
    # A set-aside row k comes after `valid[k]` of the frame's records; those from there on
    # come after it too, and after its line breaks.
    valid = [r.record - k for k, r in enumerate(refused)]
    pushed = [0]
    for r in refused:
        pushed.append(pushed[-1] + r.breaks)
    passed = pl.Series(valid, dtype=pl.Int64).search_sorted(index, side="right")
    lines = index + 2 + passed + before + pl.Series(pushed, dtype=pl.Int64).gather(passed)
    # line breaks of the frame's records before each set-aside row
    through = pl.concat([pl.Series([0], dtype=pl.Int64), breaks.cum_sum()]).gather(valid).to_list()
    odd = [2 + r.record + through[k] + pushed[k] for k, r in enumerate(refused)]
    return lines.alias("line"), odd


def _breaks(frame: pl.DataFrame) -> pl.Series:
    """Each record's line breaks (inside quoted values)."""
    return frame.select(
        pl.sum_horizontal(pl.col(c).str.count_matches(LINE_BREAK) for c in frame.columns)
        .cast(pl.Int64)
        .alias("breaks")
    ).to_series()


class RunningLines:
    """`record_lines` a block of records at a time (`stream`): the records and line breaks
    of the blocks before carry over, and the rows set aside so far place each record."""

    def __init__(self) -> None:
        self.rows = 0  # records of the blocks so far
        self.breaks = 0  # their line breaks
        self.longest = 0
        self.placed: dict[int, int] = {}  # set-aside row k -> its line

    def block(self, frame: pl.DataFrame, refused: list[Refused], *, quoted: bool) -> pl.Series:
        """Where each record of the next block starts; `refused`: every row set aside so
        far, in file order (those after this block change nothing here); `quoted`: whether
        the file has had a quote so far (without one, no value holds a line break)."""
        rows, start = frame.height, self.rows
        index = pl.int_range(start, start + rows, dtype=pl.Int64, eager=True)
        breaks = _breaks(frame) if quoted else pl.zeros(rows, pl.Int64, eager=True)
        valid = [r.record - k for k, r in enumerate(refused)]
        pushed = [0]
        for r in refused:
            pushed.append(pushed[-1] + r.breaks)
        passed = pl.Series(valid, dtype=pl.Int64).search_sorted(index, side="right")
        before = self.breaks + breaks.cum_sum() - breaks
        lines = index + 2 + passed + before + pl.Series(pushed, dtype=pl.Int64).gather(passed)
        through = pl.concat([pl.Series([0], dtype=pl.Int64), breaks.cum_sum()]).to_list()
        for k, r in enumerate(refused):
            if k not in self.placed and start <= valid[k] < start + rows:
                self.placed[k] = 2 + r.record + self.breaks + through[valid[k] - start] + pushed[k]
        self.rows += rows
        self.breaks += int(breaks.sum())
        self.longest = max(self.longest, int(breaks.max() or 0))  # type: ignore[arg-type]
        return lines.alias("line")

    def finish(self, refused: list[Refused], total: int) -> list[int] | None:
        """The lines of the rows set aside, once every block is read; None when the lines
        do not add up or a record runs over MAX_RECORD_LINES lines (as `record_lines`)."""
        pushed = 0
        for k, r in enumerate(refused):
            self.placed.setdefault(k, 2 + r.record + self.breaks + pushed)
            pushed += r.breaks
        longest = max([self.longest, *(r.breaks for r in refused)])
        spans = sum(1 + r.breaks for r in refused)
        if longest >= MAX_RECORD_LINES or 1 + self.rows + self.breaks + spans != total:
            return None
        return [self.placed[k] for k in range(len(refused))]
