"""The line a text editor shows for each record, counted from the raw bytes.

The csv module ends a line at CR, LF or CRLF; so does this count. When the file has one line
per record the answer is record + 2; otherwise each record's line breaks (inside quoted
values) push the records after it down, and they must account for every line of the file,
or the careful reader reads it (blank lines, which pyarrow skips silently).
"""

from __future__ import annotations

import polars as pl

from daemon.clever.reader import MAX_RECORD_LINES

LINE_BREAK = r"\r\n|\r|\n"


def physical_lines(data: bytes) -> int:
    breaks = data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")
    return breaks + (0 if data.endswith((b"\n", b"\r")) else 1)


def record_lines(frame: pl.DataFrame, data: bytes) -> pl.Series | None:
    """Where each record starts (the header is line 1), or None when the lines do not add up
    or a record runs over MAX_RECORD_LINES lines (a quote left open: the careful reader's
    fatal problem)."""
    rows = frame.height
    total = physical_lines(data)
    start = pl.int_range(2, rows + 2, dtype=pl.Int64, eager=True)
    if total == rows + 1:
        return start.alias("line")
    breaks = frame.select(
        pl.sum_horizontal(pl.col(c).str.count_matches(LINE_BREAK) for c in frame.columns)
        .cast(pl.Int64)
        .alias("breaks")
    ).to_series()
    if breaks.max() >= MAX_RECORD_LINES or 1 + rows + breaks.sum() != total:  # type: ignore[operator]
        return None
    return (start + breaks.cum_sum() - breaks).alias("line")
