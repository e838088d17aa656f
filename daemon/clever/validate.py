"""Validating an upload: the five files in parent-to-child order, records out to a sink.

Only the id sets needed for reference checks stay in memory; records go to the sink (the
database's staging tables). Three engines give the same problems and records: the columnar
one (`columns`, the default: rules as masks over whole columns), the batched one (`batch`:
plain batches checked with loops in C, and the columnar engine's fallback for a file it cannot
read exactly) and the careful row-by-row rules (`checks`), which have the last word.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from daemon.clever import batch
from daemon.clever.cells import Row
from daemon.clever.checks import Checker
from daemon.clever.files import SPECS, FileFingerprint, FoundFiles, fingerprint
from daemon.clever.header import open_csv
from daemon.clever.reader import CsvFile
from daemon.roster.entities import (
    ENROLLMENTS,
    FILES,
    SCHOOLS,
    SECTION_TEACHERS,
    SECTIONS,
    STUDENTS,
    TEACHERS,
    Entity,
)
from daemon.roster.outcome import FileSummary
from daemon.roster.problems import ProblemLog
from daemon.roster.tenant import TenantSettings

if TYPE_CHECKING:
    from daemon.clever.columns.engine import Columnar


class RowWriter(Protocol):
    """Takes `entity.stage_columns` tuples: the record's fields, its line, whether held, and
    which fields keep their roster value (",grade," or None)."""

    def append(self, row: Row) -> None: ...

    def extend(self, rows: Iterable[Row]) -> None: ...


class SnapshotSink(Protocol):
    """Where valid (and held) records go. Implemented by the store's staging tables."""

    def writer(self, entity: Entity) -> RowWriter: ...

    def skipped(self, entity: Entity) -> RowWriter:
        """Takes (*key, line) of rows skipped without holding their record."""
        ...

    def duplicates(
        self, entity: Entity, among: Sequence[int] | None = None
    ) -> Iterable[tuple[int, int]]:
        """(line, first line) of rows whose key repeats an earlier row's; they are dropped.
        `among`: the only lines that can repeat one (None: any line can)."""
        ...

    def discard(self, entity: Entity) -> None:
        """Forget every record of `entity` written so far."""
        ...


@dataclass
class Validation:
    """Per-file counts (the problems went to the ProblemLog)."""

    files: dict[str, FileSummary] = field(default_factory=dict)
    fatal: bool = False
    # The files the columnar engine validated (the others were read the careful way).
    columnar: tuple[str, ...] = field(default=(), compare=False)

    @property
    def error_rows(self) -> int:
        return sum(f.errors for f in self.files.values())

    @property
    def rows_read(self) -> int:
        return sum(f.rows for f in self.files.values())


Engine = Literal["columnar", "batch", "careful"]
ENGINES: tuple[Engine, ...] = ("columnar", "batch", "careful")


def fingerprints(found: FoundFiles) -> dict[str, FileFingerprint]:
    return {name: fingerprint(path) for name, path in found.files.items()}


def validate(
    found: FoundFiles,
    prints: dict[str, FileFingerprint],
    settings: TenantSettings,
    problems: ProblemLog,
    sink: SnapshotSink,
    *,
    engine: Engine = "columnar",
) -> Validation:
    """Validate an upload's files into `sink`, logging every problem.

    `engine="careful"` sends every row down the careful path (tests compare the engines).
    """
    return _Validator(settings, problems, sink, engine).run(found, prints)


class _Validator:
    def __init__(
        self, settings: TenantSettings, problems: ProblemLog, sink: SnapshotSink, engine: Engine
    ) -> None:
        self.settings = settings
        self.problems = problems
        self.sink = sink
        self.bulk = engine != "careful"
        self.c = Checker(settings, problems, lambda entity, row: sink.skipped(entity).append(row))
        self.columnar: Columnar | None = None
        if engine == "columnar":
            # Imported only now: polars and pyarrow cost a second to import, and an identical
            # upload (found before validation) needs neither.
            from daemon.clever.columns.engine import Columnar

            self.columnar = Columnar(self.c, sink)

    def run(self, found: FoundFiles, prints: dict[str, FileFingerprint]) -> Validation:
        result = Validation()
        self._report_folder(found)
        opened: dict[str, CsvFile] = {}
        try:
            for name, path in found.files.items():
                csv_file = open_csv(
                    SPECS[name],
                    path,
                    prints[name],
                    self.settings.fallback_encoding,
                    self.problems,
                    self.settings.secret_columns,
                )
                if csv_file is not None:
                    opened[name] = csv_file
            steps: list[tuple[str, Callable[[CsvFile], None]]] = [
                (SCHOOLS.file, self._schools),
                (TEACHERS.file, self._teachers),
                (STUDENTS.file, self._students),
                (SECTIONS.file, self._sections),
                (ENROLLMENTS.file, self._enrollments),
            ]
            for name, step in steps:
                if self.problems.has_fatal():
                    result.fatal = True
                    return result
                self._report_columns(opened[name])
                if self.columnar is None or not self.columnar.take(opened[name]):
                    step(opened[name])
                self._end_of_file(opened[name])
            if self.problems.has_fatal():
                result.fatal = True
                return result
            # The columnar engine knows which lines can repeat a key (usually none).
            among = self.columnar.repeat_candidates() if self.columnar is not None else None
            for line, first in self.sink.duplicates(ENROLLMENTS, among):
                self.problems.warning(
                    "duplicate_row",
                    f"the same enrollment as line {first}; ignored",
                    file=ENROLLMENTS.file,
                    line=line,
                )
        finally:
            for csv_file in opened.values():
                csv_file.close()
        result.columnar = tuple(self.columnar.taken) if self.columnar is not None else ()
        result.files = {
            name: FileSummary(
                name,
                opened[name].rows,
                self.c.error_rows[name],
                self.problems.warnings_by_file[name],
            )
            for name in FILES
        }
        return result

    # -- reporting --------------------------------------------------------------------------

    def _report_folder(self, found: FoundFiles) -> None:
        for name in found.missing:
            message = f"{name} is missing: all five files are required"
            self.problems.fatal("missing_file", message, file=name)
        for used, ignored in found.ignored_twins:
            message = f"{ignored.name} was ignored: {used.name} has the same name and is newer"
            self.problems.warning("ignored_file", message, file=used.name.lower())
        if found.others:
            message = "files that are not part of the Clever set were left alone: "
            self.problems.warning("other_files", message + ", ".join(found.others))

    def _report_columns(self, f: CsvFile) -> None:
        if not f.extra:
            return
        names = ", ".join(name for _, name in f.extra)
        kept = f.name != ENROLLMENTS.file and self.settings.keep_extra_columns
        message = f"extra columns {'kept with each record' if kept else 'ignored'}: {names}"
        self.problems.warning("extra_columns", message, file=f.name, line=f.header_line)

    def _end_of_file(self, f: CsvFile) -> None:
        self.c.notes.flush(self.problems)
        if f.blank_rows:
            rows = f"{f.blank_rows:,} blank row{'s' if f.blank_rows != 1 else ''}"
            message = f"{rows} ignored (first on line {f.first_blank_line})"
            self.problems.warning("blank_rows", message, file=f.name, line=f.first_blank_line)
        if f.rows == 0 and not self.problems.has_fatal():
            self.problems.fatal("empty_file", "the file has a header but no data rows", file=f.name)

    def _misshapen(self, f: CsvFile) -> Callable[[int, list[str]], None]:
        return lambda line, fields: self.c.misshapen(f, line, fields)

    # -- the five files ---------------------------------------------------------------------

    def _schools(self, f: CsvFile) -> None:
        write = self.sink.writer(SCHOOLS).append
        for line, fields in f.records(self.problems, self._misshapen(f)):
            self.c.school_row(f, line, fields, write)

    def _teachers(self, f: CsvFile) -> None:
        self._people(f, TEACHERS)

    def _students(self, f: CsvFile) -> None:
        self._people(f, STUDENTS)

    def _people(self, f: CsvFile, entity: Entity) -> None:
        writer = self.sink.writer(entity)
        for lines, rows in f.batches(self.problems, self._misshapen(f)):
            records = batch.plain_people(self.c, f, entity, lines, rows) if self.bulk else None
            if records is not None:
                writer.extend(records)
                continue
            for line, fields in zip(lines, rows, strict=True):
                self.c.person_row(f, entity, line, fields, writer.append)

    def _sections(self, f: CsvFile) -> None:
        sections, links = self.sink.writer(SECTIONS), self.sink.writer(SECTION_TEACHERS)
        for lines, rows in f.batches(self.problems, self._misshapen(f)):
            records = batch.plain_sections(self.c, f, lines, rows) if self.bulk else None
            if records is not None:
                sections.extend(records[0])
                links.extend(records[1])
                continue
            for line, fields in zip(lines, rows, strict=True):
                self.c.section_row(f, line, fields, sections.append, links.append)

    def _enrollments(self, f: CsvFile) -> None:
        writer = self.sink.writer(ENROLLMENTS)
        for lines, rows in f.batches(self.problems, self._misshapen(f)):
            if self.bulk:
                records, careful = batch.plain_enrollments(self.c, f, lines, rows)
                writer.extend(records)
            else:
                careful = list(range(len(rows)))
            for i in careful:
                self.c.enrollment_row(f, lines[i], rows[i], writer.append)
