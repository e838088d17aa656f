"""Opening one Clever CSV: its encoding, and its header row (columns, extras, secrets)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import IO

from daemon.clever.files import CO_TEACHER, FileFingerprint, FileSpec
from daemon.clever.reader import CsvFile
from daemon.clever.values import is_secret
from daemon.roster.problems import ProblemLog

# Clever's fullest export has about 30 columns: a header far wider is not a roster file, and
# reading its rows would cost memory in proportion.
MAX_COLUMNS = 1000
_BOM_AS_CP1252 = "\u00ef\u00bb\u00bf"


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
            csv_file.secret.append((position, header[position].strip()))
        else:
            csv_file.extra.append((position, column))
    csv_file.co_teachers.sort()
    for _, column in csv_file.secret:
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
