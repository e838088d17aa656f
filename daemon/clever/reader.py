"""Opening one Clever CSV: decoding, the header row, and rows with the line a text editor shows."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from daemon.clever.files import CO_TEACHER, FileFingerprint, FileSpec
from daemon.clever.problems import ProblemLog

# A quoted field that runs on past this many lines is almost surely a missing closing quote.
MAX_RECORD_LINES = 50
_BOM_AS_CP1252 = "\u00ef\u00bb\u00bf"


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
    co_teachers: list[tuple[int, int]] = field(default_factory=list)  # (N, position)
    header_line: int = 1
    blank_rows: int = 0
    first_blank_line: int | None = None

    @property
    def name(self) -> str:
        return self.spec.filename

    @property
    def width(self) -> int:
        return len(self.header)

    def records(self, problems: ProblemLog) -> Iterator[tuple[int, list[str]]]:
        """(line, fields) of each non-blank record; a runaway quote or a csv error is fatal."""
        reader = csv.reader(self.handle)
        reader_line = self.header_line
        try:
            for fields in reader:
                line = reader_line + 1
                reader_line = reader.line_num + self.header_line
                if not any(fields):
                    self.blank_rows += 1
                    self.first_blank_line = self.first_blank_line or line
                    continue
                if reader_line - line >= MAX_RECORD_LINES and len(fields) != self.width:
                    problems.fatal(
                        "unbalanced_quote",
                        f"a quoted value opened on line {line} never closes: it swallows lines"
                        f" {line}-{reader_line}",
                        file=self.name,
                        line=line,
                    )
                    return
                yield line, fields
        except csv.Error as exc:
            problems.fatal(
                "malformed_csv",
                f"this line cannot be read as CSV ({exc})",
                file=self.name,
                line=reader_line + 1,
            )

    def close(self) -> None:
        self.handle.close()


def open_csv(
    spec: FileSpec,
    path: Path,
    fp: FileFingerprint,
    fallback_encoding: str,
    problems: ProblemLog,
) -> CsvFile | None:
    """Open `path` and check its header; None (a fatal problem is logged) when unusable."""
    name = spec.filename
    if fp.has_nul:
        problems.fatal(
            "not_text", "the file contains NUL bytes: it is not a CSV text file", file=name
        )
        return None
    encoding = "utf-8-sig"
    if not fp.utf8:
        byte_hint = f"the first byte that is not UTF-8 is on line {fp.bad_line}"
        if not fallback_encoding or (not fp.cp1252_ok and fallback_encoding == "windows-1252"):
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
    csv_file = _read_header(spec, path, encoding, handle, problems)
    if csv_file is None:
        handle.close()
    return csv_file


def _read_header(
    spec: FileSpec, path: Path, encoding: str, handle: IO[str], problems: ProblemLog
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
    normalised = [cell.strip().lower() for cell in header]
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
    fatal = False
    for position, column in enumerate(normalised):
        if not column:
            continue
        if column in index:
            problems.fatal(
                "duplicate_column",
                f"column {column!r} appears twice in the header (columns {index[column] + 1}"
                f" and {position + 1})",
                file=name,
                line=header_line,
                column=header[position].strip(),
            )
            fatal = True
        index[column] = position
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
            csv_file.co_teachers.append((int(match[1]), position))
        elif not spec.known(column):
            csv_file.extra.append((position, column))
    csv_file.co_teachers.sort()
    unnamed = [str(p + 1) for p, column in enumerate(normalised) if not column]
    if unnamed:
        problems.warning(
            "unnamed_column",
            f"column(s) {', '.join(unnamed)} have no name in the header and are ignored",
            file=name,
            line=header_line,
        )
    return csv_file
