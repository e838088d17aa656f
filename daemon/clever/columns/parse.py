"""Reading one Clever CSV column-wise with pyarrow, or saying that the careful reader must.

The careful reader (`clever.reader`) has the last word on what a file holds. pyarrow reads the
same records as Python's csv module for RFC 4180 text; whatever could make them differ, or
needs the careful reader's fatal problems, sends the whole file back to it: a parse error, a
row of the wrong width, a quote left open at the end, a field over the csv module's limit, a
blank row, a record over MAX_RECORD_LINES lines, a header not alone on line 1, a file that
is not UTF-8.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

from daemon.clever.columns.lines import record_lines
from daemon.clever.reader import CsvFile

# pyarrow parses in blocks of this many bytes (one block per thread at a time).
BLOCK_BYTES = 8 << 20
_END = "\x01end of file"


@dataclass
class Parsed:
    """A file's data rows: column `c{i}` is the header's i-th column, `line` where each
    record starts."""

    frame: pl.DataFrame


def column(position: int) -> str:
    return f"c{position}"


def read(f: CsvFile) -> Parsed | None:
    """The file's rows as a frame, or None when the careful reader must read it."""
    if f.header_line != 1 or f.encoding != "utf-8-sig":
        return None
    data = f.path.read_bytes()
    names = [column(i) for i in range(f.width)]
    refused: list[object] = []

    def wrong_width(row: object) -> str:
        refused.append(row)
        return "skip"

    # A last row of its own when the file ends cleanly; swallowed into the last value when a
    # quote is left open at the end, which the careful reader reports (as it finds it).
    end = ",".join([_END] * f.width).encode()
    try:
        table = pacsv.read_csv(
            pa.py_buffer(data + b"\n" + end),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(
                newlines_in_values=True, invalid_row_handler=wrong_width
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowException, ValueError):
        return None
    if refused or table.num_rows < 2:
        return None
    frame = pl.from_arrow(table)
    del table
    assert isinstance(frame, pl.DataFrame)
    if frame.row(-1) != (_END,) * f.width:
        return None
    frame = frame.slice(0, frame.height - 1)
    if not _plain_text(frame):
        return None
    lines = record_lines(frame, data)
    if lines is None:
        return None
    return Parsed(frame.with_columns(line=lines))


def _plain_text(frame: pl.DataFrame) -> bool:
    """No field over the csv module's limit (counted in bytes: never fewer than characters)
    and no blank row (the careful reader counts them)."""
    every = [pl.col(name) for name in frame.columns]
    longest, blank = frame.select(
        longest=pl.max_horizontal(c.str.len_bytes().max() for c in every),
        blank=pl.all_horizontal(c == "" for c in every).any(),
    ).row(0)
    return bool(longest <= csv.field_size_limit() and not blank)
