"""Repeated enrollments: the columnar engine finds them itself, and must say exactly what the
careful path says of them, on SQLite and on PostgreSQL.

An SIS that writes an enrollment twice gets a `duplicate_row` warning on every later copy
("the same enrollment as line N; ignored", N the first copy's line), whichever path each
copy took (plain, or careful because it is padded or held), and only the first copy is
staged. The same problems in the same order, the same staged records, the same counts and
the same roster as the careful row-by-row path.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import pytest

from bench.district import generate
from daemon import uploadset
from daemon.clever.columns import repeats
from daemon.clever.validate import validate
from daemon.config import Settings
from daemon.roster.entities import ENROLLMENTS
from daemon.store.database import Database
from daemon.store.staging import STAGE, Stage
from tests.support.clever import check_folder
from tests.support.roster import NEVER_PAUSE, add_tenant, counts, pipeline_for, roster, run_import


def _padded(row: str) -> str:
    """The same enrollment with its section id padded: the careful path cleans it."""
    school, section, student = row.split(",")
    return f"{school}, {section} ,{student}"


@pytest.fixture
def repeating(tmp_path: Path) -> Path:
    """A small district whose enrollments repeat themselves every way they can."""
    folder = tmp_path / "district"
    generate(folder, 300)
    path = folder / "enrollments.csv"
    header, *rows = path.read_text(encoding="utf-8").splitlines()
    plain, before, after, of_held = rows[10], rows[30], rows[20], rows[40]
    # The student of `of_held` has no first name: held, and so are their enrollments.
    student = of_held.split(",")[2]
    students = folder / "students.csv"
    people = students.read_text(encoding="utf-8").splitlines()
    people = [
        ",".join(v if i != 2 else "" for i, v in enumerate(p.split(",")))
        if p.split(",")[1] == student
        else p
        for p in people
    ]
    students.write_text("\r\n".join(people) + "\r\n", encoding="utf-8")
    rows.insert(5, _padded(before))  # careful first, its plain twin later
    rows.insert(200, plain)  # the same plain row three times
    rows += [plain, _padded(after), of_held, plain]  # careful after plain; held twice
    path.write_text("\r\n".join([header, *rows]) + "\r\n", encoding="utf-8")
    return folder


def _first_copies(folder: Path) -> list[tuple[int, int]]:
    """(line, first line) of every later copy of an enrollment, read plainly."""
    firsts: dict[tuple[str, ...], int] = {}
    repeats = []
    text = (folder / "enrollments.csv").read_text(encoding="utf-8").splitlines()
    for line, row in enumerate(text[1:], start=2):
        key = tuple(v.strip() for v in row.split(","))
        if key in firsts:
            repeats.append((line, firsts[key]))
        else:
            firsts.setdefault(key, line)
    return repeats


@pytest.mark.parametrize("careful_batch", [repeats.CAREFUL_BATCH_ROWS, 1])
def test_repeated_enrollments_are_reported_and_dropped_as_the_careful_path_does(
    repeating: Path, database_url: str, careful_batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also with the careful rows' keys hashed one at a time (the batch's edge)."""
    monkeypatch.setattr(repeats, "CAREFUL_BATCH_ROWS", careful_batch)
    columnar = check_folder(repeating, engine="columnar", database=database_url)
    careful = check_folder(repeating, engine="careful", database=database_url)

    assert "enrollments.csv" in columnar.validation.columnar
    expected = _first_copies(repeating)
    assert len(expected) == 6
    warned = [(p.line, p.message) for p in columnar.problems if p.code == "duplicate_row"]
    assert warned == [
        (line, f"the same enrollment as line {first}; ignored") for line, first in expected
    ]
    assert columnar.problems == careful.problems
    assert columnar.records == careful.records
    assert columnar.validation == careful.validation
    staged_lines = {r[3] for r in columnar.records["enrollments"]}
    assert not staged_lines & {line for line, _ in expected}
    assert {first for _, first in expected} <= staged_lines
    assert any(r[4] for r in columnar.records["enrollments"])  # held rows are staged too


def test_repeated_enrollments_import_the_same_roster_with_either_engine(
    db: Database, settings: Settings, repeating: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rosters, tallies = {}, {}
    for engine in ("columnar", "careful"):
        add_tenant(db, engine, NEVER_PAUSE.updated(max_row_errors=1_000))
        monkeypatch.setattr(
            uploadset.clever, "validate", functools.partial(validate, engine=engine)
        )
        folder = Path(shutil.copytree(repeating, settings.data_dir / f"upload-{engine}"))
        report = run_import(pipeline_for(db, settings), engine, folder)
        assert report.state.value == "imported_with_errors", report.problems[:3]
        rosters[engine], tallies[engine] = roster(db, engine), counts(report)

    assert rosters["columnar"] == rosters["careful"]
    assert tallies["columnar"] == tallies["careful"]
    assert tallies["columnar"]["enrollments"]["held"] == 7  # the held student's, once each


def test_lines_that_only_look_alike_are_not_repeats(database_url: str) -> None:
    """Hash candidates that collide without repeating a key: the stage checks exactly."""
    db = Database(database_url)
    try:
        with db.read() as conn:
            stage = Stage(conn)
            stage.writer(ENROLLMENTS).extend(
                [
                    ("SCH1", "SEC1", "S1", 2, False, None),
                    ("SCH1", "SEC1", "S2", 3, False, None),
                    ("SCH1", "SEC1", "S1", 4, True, None),
                ]
            )
            assert list(stage.duplicates(ENROLLMENTS, among=[2, 3])) == []
            assert list(stage.duplicates(ENROLLMENTS, among=[])) == []
            assert list(stage.duplicates(ENROLLMENTS, among=[2, 4])) == [(4, 2)]
            left = conn.execute(STAGE["enrollments"].select()).all()
            assert sorted(r.line for r in left) == [2, 3]
            assert stage.counts(ENROLLMENTS) == (2, 0)
            stage.close()
    finally:
        db.close()
