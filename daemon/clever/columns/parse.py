"""Reading one Clever CSV column-wise with pyarrow, or saying that the careful reader must.

The careful reader (`clever.reader`) has the last word on what a file holds. pyarrow reads the
same records as Python's csv module for RFC 4180 text; whatever could make them differ, or
needs the careful reader's fatal problems, sends the whole file back to it: a parse error, a
quote left open at the end, a field over the csv module's limit, a record over
MAX_RECORD_LINES lines, a header not alone on line 1, an encoding other than UTF-8 and
Windows-1252. Rows of the wrong width and blank rows are the engine's to report, as the
careful reader would.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

from daemon.clever.columns.lines import Refused, physical_lines, record_lines
from daemon.clever.reader import CsvFile, line_breaks

# pyarrow parses in blocks of this many bytes (one block per thread at a time).
BLOCK_BYTES = 1 << 20
END = "\x01end of file"
# Decoded here exactly as the careful reader's text mode decodes them.
DECODED = ("utf-8-sig", "windows-1252")


@dataclass
class Parsed:
    """A file's data rows of the header's width: column `c{i}` is the header's i-th column,
    `line` where each record starts, `blank` whether it is a blank row (counted, never a
    record). `refused`: (line, values) of the rows of another width that are not blank."""

    frame: pl.DataFrame
    refused: list[tuple[int, list[str]]] = field(default_factory=list)
    blank_rows: int = 0
    first_blank_line: int | None = None


def column(position: int) -> str:
    return f"c{position}"


def read(f: CsvFile) -> Parsed | None:
    """The file's rows as a frame, or None when the careful reader must read it."""
    if f.header_line != 1 or f.encoding not in DECODED:
        return None
    try:
        text, total = buffered(f)
    except (OSError, UnicodeDecodeError):  # the careful reader says what is wrong
        return None
    parsed = _parse(text, f.width, threads=True)
    if parsed is not None and parsed[1]:
        # Rows of another width: read again on one thread, which knows their lines.
        parsed = None
        parsed = _parse(text, f.width, threads=False)
    del text
    if parsed is None:
        return None
    tables, odd = [parsed[0]], parsed[1]
    del parsed
    frame = _frame(tables)
    if frame.height == 0 or frame.row(-1) != (END,) * f.width:
        return None
    frame = frame.slice(0, frame.height - 1)
    refused = refused_rows(odd)
    if refused is None or not within_field_limit(frame, refused):
        return None
    counted = record_lines(frame, [Refused(n, line_breaks(v)) for n, v in refused], total)
    if counted is None:
        return None
    lines, odd_lines = counted
    placed = [(line, fields) for line, (_, fields) in zip(odd_lines, refused, strict=True)]
    return _blanks_marked(frame.with_columns(line=lines), placed)


def buffered(f: CsvFile) -> tuple[bytearray, int]:
    """The file as UTF-8 with an end row after it, read into one buffer (a district's
    enrollments are 20 MB: no second copy), and its number of lines."""
    end = ",".join([END] * f.width).encode()
    if f.encoding == "utf-8-sig":
        size = f.path.stat().st_size
        text = bytearray(size + 1 + len(end))
        with f.path.open("rb") as handle:
            size = handle.readinto(memoryview(text)[:size])
    else:
        text = bytearray(f.path.read_bytes().decode(f.encoding).encode("utf-8"))
        size = len(text)
        text.extend(bytes(1 + len(end)))
    total = physical_lines(text, size)
    # A last row of its own when the file ends cleanly; swallowed into the last value when a
    # quote is left open at the end, which the careful reader reports (as it finds it).
    tail = end if size and text[size - 1] in b"\r\n" else b"\n" + end
    text[size:] = tail
    return text, total


def options(
    width: int, wrong_width: Callable[[object], str], *, threads: bool, block: int = BLOCK_BYTES
) -> dict[str, Any]:
    """pyarrow's reading options: every value a string, '' never null, every line a row (a
    blank one too), rows of another width handed to `wrong_width`."""
    names = [column(i) for i in range(width)]
    return {
        "read_options": pacsv.ReadOptions(
            column_names=names, skip_rows=1, block_size=block, use_threads=threads
        ),
        "parse_options": pacsv.ParseOptions(
            newlines_in_values=True, ignore_empty_lines=False, invalid_row_handler=wrong_width
        ),
        "convert_options": pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    }


def _parse(data: bytearray, width: int, *, threads: bool) -> tuple[Any, list[object]] | None:
    odd: list[object] = []

    def wrong_width(row: object) -> str:
        odd.append(row)
        return "skip"

    try:
        table = pacsv.read_csv(pa.py_buffer(data), **options(width, wrong_width, threads=threads))
    except (pa.ArrowException, ValueError):
        return None
    return table, odd


def _frame(tables: list[Any]) -> pl.DataFrame:
    """The (only) table as polars columns, each arrow column let go once converted."""
    table = tables.pop()
    columns = []
    for name in table.column_names:
        series = pl.from_arrow(table.column(name))
        assert isinstance(series, pl.Series)
        columns.append(series.rechunk().alias(name))
        table = table.drop_columns([name])
    return pl.DataFrame(columns)


def refused_rows(odd: list[object]) -> list[tuple[int, list[str]]] | None:
    """(record, values) of each row of another width (record 0: the first after the header),
    its values read by the csv module; None when its place is unknown or its text is not one
    record."""
    refused = []
    for row in odd:
        number, text = getattr(row, "number", None), getattr(row, "text", "")
        if number is None:
            return None
        records = list(csv.reader(io.StringIO(text, newline="")))
        if len(records) > 1:
            return None
        refused.append((number - 2, records[0] if records else []))  # 1 is the header
    return refused


def within_field_limit(frame: pl.DataFrame, refused: list[tuple[int, list[str]]]) -> bool:
    """No field over the csv module's limit (counted in bytes: never fewer than characters)."""
    limit = csv.field_size_limit()
    every = [pl.col(name).str.len_bytes().max() for name in frame.columns]
    longest = frame.select(pl.max_horizontal(every)).item() if frame.height else 0
    return bool(longest <= limit) and all(len(v) <= limit for _, fields in refused for v in fields)


def _blanks_marked(frame: pl.DataFrame, refused: list[tuple[int, list[str]]]) -> Parsed:
    """Blank rows (no value at all, whatever their width) are counted, and marked in the
    column `blank` rather than dropped (no copy of the file): no rule passes them."""
    blank = frame.select(pl.all_horizontal(pl.exclude("line") == "").alias("blank")).to_series()
    lines = frame.get_column("line").filter(blank).to_list()
    lines += [line for line, fields in refused if not any(fields)]
    return Parsed(
        frame.with_columns(blank),
        [(line, fields) for line, fields in refused if any(fields)],
        len(lines),
        min(lines) if lines else None,
    )
