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
    breaks = frame.select(
        pl.sum_horizontal(pl.col(c).str.count_matches(LINE_BREAK) for c in frame.columns)
        .cast(pl.Int64)
        .alias("breaks")
    ).to_series()
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
