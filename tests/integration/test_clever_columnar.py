"""The columnar engine must give exactly what the careful row-by-row path gives.

The same problems (code, message, file, line, column, value, in order), the same staged
records and the same roster after the import, on any upload: hypothesis' messy ones, the
quirk fixtures, and a small generated district corrupted the ways real exports are (quoted
line breaks, rows of the wrong width, Windows-1252, repeated ids, references to nobody,
control characters, padding). The full-size corrupted district is `bench/validation.py`'s.
"""

from __future__ import annotations

import csv
import functools
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.corrupted import corrupt
from bench.district import generate
from daemon import uploadset
from daemon.clever.columns import engine as columnar_engine
from daemon.clever.columns import stream as columnar_stream
from daemon.clever.files import SPECS, find_files, fingerprint
from daemon.clever.header import open_csv
from daemon.clever.validate import Engine, fingerprints, validate
from daemon.config import Settings
from daemon.roster.entities import Entity
from daemon.roster.problems import ProblemLog
from daemon.roster.tenant import TenantSettings
from daemon.store import staging_load
from daemon.store.database import Database
from tests.integration.test_clever_bulk import GRADE_RULES, MESSY_UPLOADS, upload
from tests.support.clever import FIXTURES, Checked, check_folder, write_csv
from tests.support.roster import NEVER_PAUSE, add_tenant, pipeline_for, roster, run_import

NOISE = ["", ",,", "x", ",,,,,,,,,,,", 'A,"two\r\nlines",x', 'B,"C1\nD",T1,,,n,,,', '"a""b",\tc']


def _agree(folder: Path, tenant: TenantSettings | None = None) -> tuple[Checked, Checked]:
    columnar = check_folder(folder, tenant, engine="columnar")
    careful = check_folder(folder, tenant, engine="careful")
    assert columnar.problems == careful.problems
    assert columnar.records == careful.records
    assert columnar.validation == careful.validation
    return columnar, careful


@MESSY_UPLOADS
@given(
    files=upload(),
    rules=GRADE_RULES,
    tail=st.sampled_from(["", "\r\n", ",,,\r\n\r\n", '\r\n"open']),
    keep=st.booleans(),
    noise=st.lists(st.tuples(st.integers(1, 9), st.sampled_from(NOISE)), max_size=4),
    chunk=st.sampled_from([1, 2, None]),
)
def test_the_engines_agree_on_any_upload(
    files: dict[str, tuple[list[str], list[list[str]]]],
    rules: dict[str, str],
    tail: str,
    keep: bool,
    noise: list[tuple[int, str]],
    chunk: int | None,
) -> None:
    tenant = TenantSettings(grade_rules=rules, keep_extra_columns=keep)
    with tempfile.TemporaryDirectory() as scratch, pytest.MonkeyPatch.context() as patch:
        if chunk is not None:  # every bound on slices and loads at its smallest
            patch.setattr(columnar_stream, "STREAM_BLOCK_BYTES", 64 * chunk)
            patch.setattr(columnar_engine, "LOAD_ROWS", chunk)
            patch.setattr(staging_load, "SQLITE_CHUNK_ROWS", chunk)
        folder = Path(scratch)
        for name, (header, rows) in files.items():
            path = write_csv(folder / name, header, rows, tail=tail)
            lines = path.read_bytes().split(b"\r\n")
            for at, text in noise:  # rows of another width, blank ones, quoted line breaks
                lines.insert(min(at, len(lines) - 1), text.encode())
            path.write_bytes(b"\r\n".join(lines))
        _agree(folder, tenant)


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.iterdir() if p.is_dir()))
def test_the_engines_agree_on_every_quirk_fixture(fixture: str) -> None:
    _agree(FIXTURES / fixture)


def test_a_clean_district_is_read_by_the_columnar_engine_itself(tmp_path: Path) -> None:
    generate(tmp_path, 300)

    columnar, _ = _agree(tmp_path)

    assert [p.code for p in columnar.problems] == ["extra_columns"]
    assert columnar.validation.columnar == (
        "teachers.csv",
        "students.csv",
        "sections.csv",
        "enrollments.csv",
    )


@pytest.fixture(scope="module")
def corrupted() -> object:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        generate(folder, 600)
        corrupt(folder, rate=0.05)
        yield folder


def test_a_corrupted_district_gives_the_same_problems_and_records(corrupted: Path) -> None:
    columnar, _ = _agree(corrupted)

    codes = {p.code for p in columnar.problems}
    assert {"wrong_field_count", "duplicate_id", "unknown_school", "line_break_in_value"} <= codes
    assert "decoded_as_windows1252" in codes
    # Windows-1252, rows of the wrong width and blank rows: the engine reads them all itself.
    assert columnar.validation.columnar == (
        "teachers.csv",
        "students.csv",
        "sections.csv",
        "enrollments.csv",
    )


def test_enrollments_read_in_small_blocks_give_the_same_problems_and_records(
    corrupted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """enrollments.csv streams a block at a time: rows of another width, quoted line breaks,
    blank rows and Windows-1252 text fall in any block, and every line stays exact."""
    folder = Path(shutil.copytree(corrupted, tmp_path / "district"))
    path = folder / "enrollments.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    for row in rows[7::40]:  # a line break inside a quoted section id
        if len(row) > 1:
            row[1] = row[1][:3] + "\r\n" + row[1][3:]
    with path.open("w", encoding="windows-1252", newline="") as handle:
        csv.writer(handle).writerows(rows)
    monkeypatch.setattr(columnar_stream, "STREAM_BLOCK_BYTES", 4096)
    assert path.stat().st_size > 20 * 4096

    columnar, _ = _agree(folder)

    assert "enrollments.csv" in columnar.validation.columnar
    enrollments = {p.code for p in columnar.problems if p.file == "enrollments.csv"}
    assert {"wrong_field_count", "line_break_in_value", "blank_rows"} <= enrollments
    assert "decoded_as_windows1252" in enrollments


@pytest.mark.parametrize("ahead", [columnar_stream.READ_AHEAD_BLOCKS, 0])
def test_pyarrow_held_to_a_few_reads_ahead_is_never_starved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ahead: int
) -> None:
    """A quoted value over a block long (pyarrow reads past it to find its end) is read by
    the engine; held to no read ahead at all, pyarrow still reads what the engine waits for,
    and the file is read whole, the same as the careful path reads it."""
    generate(tmp_path, 300)
    monkeypatch.setattr(columnar_stream, "STREAM_BLOCK_BYTES", 4096)
    monkeypatch.setattr(columnar_stream, "READ_AHEAD_BLOCKS", ahead)
    long = "x" * 5000
    with (tmp_path / "enrollments.csv").open("a", encoding="utf-8", newline="") as handle:
        handle.write(f'SCH0000,"SEC\r\n{long}",S0000001\r\nSCH0000,SEC000000,S0000001\r\n')

    columnar, _ = _agree(tmp_path)

    assert "enrollments.csv" in columnar.validation.columnar
    spanning = [p for p in columnar.problems if p.code == "line_break_in_value"]
    assert [(p.file, p.line) for p in spanning][-1] == ("enrollments.csv", 2102)


def test_a_busy_engine_holds_pyarrow_to_a_few_reads_ahead(tmp_path: Path) -> None:
    """pyarrow's reading thread reads READ_AHEAD_BLOCKS ahead of the blocks the engine has
    taken, then waits, however long the engine is busy (it read the whole file ahead
    before); while the engine waits for a block, it reads freely."""
    generate(tmp_path, 300)
    path = tmp_path / "enrollments.csv"
    spec = SPECS["enrollments.csv"]
    f = open_csv(spec, path, fingerprint(path), "windows-1252", ProblemLog())
    assert f is not None
    blocks = columnar_stream.stream(f)
    assert blocks is not None
    source = blocks._source
    assert source is not None
    reads: list[int] = []
    thread = threading.Thread(target=lambda: reads.extend(iter(lambda: len(source.read(64)), 0)))
    thread.start()
    try:
        ahead = columnar_stream.READ_AHEAD_BLOCKS
        _eventually(lambda: len(reads) == ahead)
        time.sleep(0.2)  # the engine busy with its block, taking none
        assert len(reads) == ahead
        source.took()
        _eventually(lambda: len(reads) == ahead + 1)
        with source.awaited():  # the engine waits: read on, to the file's end
            thread.join(10)
        assert not thread.is_alive()
        assert len(reads) > 10 * ahead
    finally:
        source.close()
        f.close()
        thread.join(10)


def _eventually(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_a_late_block_the_engine_cannot_read_hands_the_file_to_the_careful_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A value over the csv module's limit near the end: the blocks before it were staged
    already, and are taken back before the careful reader reads the whole file."""
    generate(tmp_path, 300)
    monkeypatch.setattr(columnar_stream, "STREAM_BLOCK_BYTES", 4096)
    huge = "9" * (csv.field_size_limit() + 1)
    with (tmp_path / "enrollments.csv").open("a", encoding="utf-8", newline="") as handle:
        handle.write(f"SCH0000,SEC{huge},S0000001\r\nSCH0000,SEC000000,S0000001\r\n")

    columnar, _ = _agree(tmp_path)

    assert "enrollments.csv" not in columnar.validation.columnar
    assert [p.severity for p in columnar.problems][-1] == "fatal"


def test_quoted_line_breaks_and_padding_keep_their_lines_in_the_columnar_engine(
    tmp_path: Path,
) -> None:
    generate(tmp_path, 300)
    path = tmp_path / "enrollments.csv"
    text = path.read_text(encoding="utf-8").splitlines(keepends=True)
    text[5] = text[5].replace(",SEC", ", SEC", 1)  # padded: needs care, cleans to the same id
    text[9] = text[9].replace(",SEC", ',"SEC\r\n', 1).replace(",S", '",S', 1)
    path.write_text("".join(text), encoding="utf-8", newline="")

    columnar, _ = _agree(tmp_path)

    assert "enrollments.csv" in columnar.validation.columnar
    spanning = [p for p in columnar.problems if p.code == "line_break_in_value"]
    assert [(p.line, p.column) for p in spanning] == [(10, "section_id")]


@pytest.mark.parametrize("engine", ["columnar", "careful"])
def test_a_runaway_quote_at_the_end_is_fatal_in_every_engine(
    tmp_path: Path, engine: Engine
) -> None:
    generate(tmp_path, 300)
    with (tmp_path / "sections.csv").open("a", encoding="utf-8", newline="") as handle:
        handle.write('SCH0000,SEC999999,"T000001,,Math,2026-08-15,2027-06-10\r\n')

    checked = check_folder(tmp_path, engine=engine)

    assert [p.code for p in checked.problems if p.severity == "fatal"] == ["unbalanced_quote"]


def test_a_corrupted_district_imports_the_same_roster_with_either_engine(
    db: Database, settings: Settings, corrupted: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rosters = {}
    for engine in ("columnar", "careful"):
        add_tenant(db, engine, NEVER_PAUSE.updated(max_row_errors=1_000_000))
        forced = functools.partial(validate, engine=engine)
        monkeypatch.setattr(uploadset.clever, "validate", forced)
        folder = Path(shutil.copytree(corrupted, settings.data_dir / f"upload-{engine}"))
        report = run_import(pipeline_for(db, settings), engine, folder)
        assert report.state.value == "imported_with_errors", report.problems[:3]
        rosters[engine] = roster(db, engine)

    assert rosters["columnar"] == rosters["careful"]
    assert len(rosters["columnar"]["enrollments"]) > 3000


class _ListSink:
    """A sink without `load_table`: the engine hands it tuples, as the careful path does."""

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple[object, ...]]] = {}

    def writer(self, entity: Entity) -> _ListSink.Rows:
        return _ListSink.Rows(self.rows.setdefault(entity.name, []))

    def skipped(self, entity: Entity) -> _ListSink.Rows:
        return _ListSink.Rows(self.rows.setdefault(f"skipped {entity.name}", []))

    def duplicates(self, entity: Entity, among: object = None) -> list[tuple[int, int]]:
        return []

    def discard(self, entity: Entity) -> None:
        self.rows.get(entity.name, []).clear()

    class Rows:
        def __init__(self, rows: list[tuple[object, ...]]) -> None:
            self.append, self.extend = rows.append, rows.extend


@pytest.mark.parametrize("fixture", ["sis_export", "broken_rows"])
def test_a_sink_that_takes_only_tuples_gets_the_careful_paths_records(fixture: str) -> None:
    found = find_files(FIXTURES / fixture)
    staged = {}
    for engine in ("columnar", "careful"):
        sink = _ListSink()
        validate(found, fingerprints(found), TenantSettings(), ProblemLog(), sink, engine=engine)
        staged[engine] = {name: sorted(rows, key=repr) for name, rows in sink.rows.items()}

    assert staged["columnar"] == staged["careful"]
