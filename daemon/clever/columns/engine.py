"""The columnar engine's driver: one file at a time, plain rows column-wise, the rest careful.

The careful rows go through `Checker` in line order after the plain rows' state (ids seen,
records known) is recorded: a plain row never repeats a key and logs no problem, so the
careful rows see what a row-by-row pass would have shown them, and the problems come out
in the same order.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable
from typing import Any, Protocol

import polars as pl

from daemon.clever.cells import Row
from daemon.clever.checks import Checker
from daemon.clever.columns import notes
from daemon.clever.columns.enrollments import enrollments
from daemon.clever.columns.parse import read
from daemon.clever.columns.people import people
from daemon.clever.columns.plain import Known, Plain
from daemon.clever.columns.repeats import Repeats
from daemon.clever.columns.sections import sections
from daemon.clever.columns.stream import stream
from daemon.clever.columns.text import join_keys, joined
from daemon.clever.reader import CsvFile
from daemon.roster.entities import (
    ENROLLMENTS,
    SECTION_TEACHERS,
    SECTIONS,
    STUDENTS,
    TEACHERS,
    Entity,
)

_LIBC = ctypes.CDLL(ctypes.util.find_library("c")) if sys.platform == "linux" else None
# Records go to the sink this many at a time (the loader chunks further).
LOAD_ROWS = 50_000


class Sink(Protocol):
    """`validate.SnapshotSink`, and optionally `load_table(entity, polars.DataFrame)`."""

    def writer(self, entity: Entity) -> Any: ...

    def discard(self, entity: Entity) -> None: ...


class Columnar:
    """Validates teachers, students, sections and enrollments column-wise when it can."""

    def __init__(self, checker: Checker, sink: Sink) -> None:
        self.c = checker
        self.sink = sink
        self.known = Known(checker)
        self.taken: list[str] = []
        self.repeats: Repeats | None = None  # once enrollments.csv is taken

    def take(self, f: CsvFile) -> bool:
        """Validate `f`; False (nothing done) when the careful reader must read it."""
        entity = _ENTITY.get(f.name)
        if entity is None:
            return False
        if entity is ENROLLMENTS:
            return self._enrollments(f)
        parsed = read(f)
        if parsed is None:
            return False
        frame = parsed.frame
        f.rows = int((~frame.get_column("blank")).sum()) + len(parsed.refused)
        f.blank_rows, f.first_blank_line = parsed.blank_rows, parsed.first_blank_line
        del parsed.frame
        plain = (
            sections(self.known, f, frame)
            if entity is SECTIONS
            else people(self.known, f, frame, entity)
        )
        self._record(entity, plain)
        careful = frame.filter(~plain.mask & ~frame.get_column("blank"))
        plain_notes = plain.notes
        del plain, frame
        self._careful(f, entity, careful, parsed.refused)
        notes.merge(self.c.notes, f, plain_notes)
        self._taken(f)
        return True

    def _enrollments(self, f: CsvFile) -> bool:
        """Enrollments need no file-wide rule: checked and staged a block at a time, and
        only their careful rows kept. A block the careful reader must read instead undoes
        what the blocks before it staged (nothing else is known of the file yet)."""
        blocks = stream(f)
        if blocks is None:
            return False
        self.repeats = Repeats()
        careful = []
        for block in blocks:
            plain = enrollments(self.known, f, block)
            self._record(ENROLLMENTS, plain)
            self.repeats.plain(plain.records[ENROLLMENTS.name])
            careful.append(block.filter(~plain.mask & ~block.get_column("blank")))
            del plain, block
        if not blocks.readable:
            self.sink.discard(ENROLLMENTS)
            self.repeats = None
            return False
        f.rows, f.blank_rows, f.first_blank_line = (
            blocks.rows,
            blocks.blank_rows,
            blocks.first_blank_line,
        )
        rest = pl.concat(careful)  # the end row's block at least
        del careful
        self._careful(f, ENROLLMENTS, rest, blocks.refused)
        self._taken(f)
        return True

    def _taken(self, f: CsvFile) -> None:
        self.taken.append(f.name)
        _give_back()

    def _record(self, entity: Entity, plain: Plain) -> None:
        """The plain records to the sink, and what later rows must know of them."""
        for name, records in plain.records.items():
            self._load(_BY_NAME[name], records)
        if entity is ENROLLMENTS:
            return
        records = plain.records[entity.name]
        key = _keys(records, entity.key)
        self.c.seen[entity.file].update(zip(key, records.get_column("line"), strict=True))
        self.c.known(entity).update(key)
        self.known.keys[entity.name] = records.select(
            joined(*(pl.col(k) for k in entity.key))
        ).to_series()

    def _load(self, entity: Entity, records: pl.DataFrame) -> None:
        load = getattr(self.sink, "load_table", None)
        for start in range(0, records.height, LOAD_ROWS):
            chunk = records.slice(start, LOAD_ROWS)
            if load is not None:
                load(entity, chunk.select(entity.stage_columns))
            else:
                self.sink.writer(entity).extend(chunk.select(entity.stage_columns).rows())

    def repeat_candidates(self) -> list[int] | None:
        """The staged enrollments' lines that may repeat another's key (`Repeats`); None
        when this engine did not take enrollments.csv (the stage must search them all)."""
        return self.repeats.candidates() if self.repeats is not None else None

    def _careful(
        self,
        f: CsvFile,
        entity: Entity,
        careful: pl.DataFrame,
        refused: list[tuple[int, list[str]]],
    ) -> None:
        """The rows the masks did not pass, and those of another width, through the careful
        rules in line order."""
        if careful.height == 0 and not refused:
            return
        row = self._careful_row(f, entity)
        added: list[tuple[str, ...]] = []
        known = self.c.known(entity) if entity is not ENROLLMENTS else None
        fields = [f"c{i}" for i in range(f.width)]
        rows = [(line, values) for line, *values in careful.select("line", *fields).iter_rows()]
        misshapen = {line for line, _ in refused}
        for line, values in sorted([*rows, *refused], key=lambda item: item[0]):
            if line in misshapen:
                self.c.misshapen(f, line, values)
                continue
            before = len(known) if known is not None else 0
            row(line, values)
            if known is not None and len(known) > before:
                added.append(_newest_key(self.c, entity, line))
        if added:
            self.known.keys[entity.name] = pl.concat(
                [self.known.keys.get(entity.name, pl.Series([], dtype=pl.String)), join_keys(added)]
            )

    def _careful_row(self, f: CsvFile, entity: Entity) -> Callable[[int, list[str]], None]:
        c, sink = self.c, self.sink
        if entity is SECTIONS:
            write, link = sink.writer(SECTIONS).append, sink.writer(SECTION_TEACHERS).append
            return lambda line, fields: c.section_row(f, line, fields, write, link)
        if entity is ENROLLMENTS:
            append, repeats = sink.writer(ENROLLMENTS).append, self.repeats
            assert repeats is not None

            def write(row: Row) -> None:
                repeats.careful(row)
                append(row)

            return lambda line, fields: c.enrollment_row(f, line, fields, write)
        write = sink.writer(entity).append
        return lambda line, fields: c.person_row(f, entity, line, fields, write)


def _give_back() -> None:
    """Return the C library's free pages to the system after a file: the next file's peak
    then starts from what is still in use, not from the last one's peak."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _keys(records: pl.DataFrame, names: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The records' keys as the careful path keeps them, every school id one string object:
    a district has a few dozen schools and 100,000 students, so a third of the memory the
    keys take (they stay until the import ends)."""
    schools: dict[str, str] = {}
    columns = [records.get_column(name).to_list() for name in names]
    columns[0] = [schools.setdefault(school, school) for school in columns[0]]
    return list(zip(*columns, strict=True))


def _newest_key(c: Checker, entity: Entity, line: int) -> tuple[str, ...]:
    """The key a careful row just made known: the last one `seen` took, on its line."""
    seen = c.seen[entity.file]
    key = next(reversed(seen))
    assert seen[key] == line
    return key


_ENTITY = {e.file: e for e in (TEACHERS, STUDENTS, SECTIONS, ENROLLMENTS)}
_BY_NAME = {e.name: e for e in (TEACHERS, STUDENTS, SECTIONS, SECTION_TEACHERS, ENROLLMENTS)}
