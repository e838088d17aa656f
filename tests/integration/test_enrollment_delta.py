"""A re-import stages only the enrollments that can change (`daemon/store/staging_delta.py`),
and must come to exactly what staging them all comes to, on SQLite and on PostgreSQL.

Two tenants take the same uploads, one the delta way and one with every enrollment staged:
the same counts a person is shown, the same problems, the same change list and the same
roster, row by row (what each import touched included). The uploads do all a nightly export
does to enrollments: students leave (deactivated) and come back (reactivated), new ones
arrive, a student's row turns bad (their enrollments held), rows repeat and come padded.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bench.district import generate
from daemon.clever.columns import engine, stream
from daemon.clever.reader import MAX_RECORD_LINES
from daemon.config import Settings
from daemon.roster.entities import ENROLLMENTS
from daemon.roster.outcome import ImportState
from daemon.roster.problems import ProblemLog
from daemon.store import staging, staging_delta, tenants
from daemon.store.database import Database
from daemon.store.tables import import_changes, imports, roster_tables
from tests.support.roster import NEVER_PAUSE, add_tenant, counts, pipeline_for, run_import

# The bookkeeping columns whose values name an import: compared as which upload it was.
_IMPORT_IDS = ("created_import_id", "changed_import_id")


def _rows(path: Path) -> tuple[str, list[str]]:
    header, *rows = path.read_text(encoding="utf-8").splitlines()
    return header, rows


def _write(path: Path, header: str, rows: list[str]) -> None:
    path.write_text("\r\n".join([header, *rows]) + "\r\n", encoding="utf-8")


def _without_first_name(folder: Path, student: str) -> None:
    """The student's row loses its first name: held, and their enrollments with it."""
    header, rows = _rows(folder / "students.csv")
    rows = [
        ",".join("" if i == 2 else v for i, v in enumerate(r.split(",")))
        if r.split(",")[1] == student
        else r
        for r in rows
    ]
    _write(folder / "students.csv", header, rows)


@pytest.fixture
def uploads(tmp_path: Path) -> list[Path]:
    """A small district, then three nights of its enrollments changing."""
    base = tmp_path / "night0"
    generate(base, 300, schools=3)
    header, rows = _rows(base / "enrollments.csv")
    nights = []
    left, arrived = rows[100:140], rows[:3]
    for night, change in enumerate(
        (
            # leavers, a padded unchanged row, repeats of unchanged and changed rows, a held
            # student, the header's columns swapped around nothing else
            lambda r: [
                r[0],
                r[1].replace(",", " , "),
                *r[2:100],
                *r[140:],
                r[5],
                r[5],
                r[141],
            ],
            # the leavers come back (reactivated), others leave, a row in the middle repeats
            lambda r: [*r[3:100], *left, *r[140:600], r[300], *r[700:]],
            # everyone comes back, new enrollments of known students and sections arrive
            lambda r: [*r, *(",".join(_swap(a.split(","))) for a in arrived)],
        ),
        start=1,
    ):
        folder = tmp_path / f"night{night}"
        shutil.copytree(base, folder)
        _write(folder / "enrollments.csv", header, change(rows))
        nights.append(folder)
    _without_first_name(nights[0], rows[141].split(",")[2])
    return [base, *nights]


def _swap(key: list[str]) -> list[str]:
    """An enrollment of the same student in another known section of the school."""
    school, section, student = key
    return [school, section[:-1] + ("1" if section[-1] != "1" else "2"), student]


def _roster(db: Database, tenant: str) -> dict[str, list[tuple[Any, ...]]]:
    """The tenant's roster rows, import ids as the how-manieth import of the tenant, times
    left out."""
    with db.read() as conn:
        tenant_id = tenants.get(conn, tenant).id
        order = [
            row.id
            for row in conn.execute(
                sa.select(imports.c.id).where(imports.c.tenant_id == tenant_id).order_by("id")
            )
        ]
        out = {}
        for name, table in roster_tables.items():
            columns = [
                c for c in table.columns if c.name != "tenant_id" and not c.name.endswith("_at")
            ]
            query = sa.select(*columns).where(table.c.tenant_id == tenant_id)
            out[name] = sorted(
                tuple(
                    order.index(value) if column.name in _IMPORT_IDS else value
                    for column, value in zip(columns, row, strict=True)
                )
                for row in conn.execute(query)
            )
        return out


def _changes(db: Database, import_id: int) -> list[tuple[Any, ...]]:
    with db.read() as conn:
        columns = [c for c in import_changes.columns if c.name != "import_id"]
        query = sa.select(*columns).where(import_changes.c.import_id == import_id)
        return sorted(tuple(row) for row in conn.execute(query))


def _previewed(db: Database, pipeline: Any, tenant: str, folder: Path) -> Any:
    """What `import --dry-run` says the upload would do (the plan's counts)."""
    with db.read() as conn:
        owner = tenants.get(conn, tenant)
    plan = pipeline.preview(owner, folder).plan
    return None if plan is None else {n: vars(e) for n, e in plan.entities.items()}


def _problems(report: Any) -> list[tuple[Any, ...]]:
    return [(p.code, p.file, p.line, p.column, p.message) for p in report.problems]


def _import_both(
    db: Database,
    settings: Settings,
    folders: list[Path],
    monkeypatch: pytest.MonkeyPatch,
    nights_told: list[dict[str, Any]] | None = None,
    *,
    dry_runs: bool = False,
) -> list[dict[str, Any]]:
    """Import every folder into tenant `delta` and, with no entity staged as a delta, into
    `whole`; assert each import came to the same (with `dry_runs`, the dry run's plan before
    it too). Returns in turn what each delta staged (the unchanged rows that may repeat, the
    gone keys) and each import's enrollment counts; `nights_told` gets every entity's."""
    staged: list[dict[str, Any]] = []
    every = nights_told
    settle = staging_delta.Delta.settle

    previewing = []

    def recorded(delta: staging_delta.Delta, candidates: Any) -> Any:
        repeating, gone = settle(delta, candidates)
        if not previewing:
            staged.append(
                {"entity": delta.entity.name, "gone": gone.height, "repeating": repeating.height}
            )
        return repeating, gone

    monkeypatch.setattr(staging_delta.Delta, "settle", recorded)
    # Many blocks of a few hundred rows, not one: what each block leaves unstaged adds up.
    monkeypatch.setattr(engine, "LOAD_ROWS", 300)
    monkeypatch.setattr(stream, "STREAM_BLOCK_BYTES", 16 << 10)
    pipeline = pipeline_for(db, settings)
    for folder in folders:
        with monkeypatch.context() as whole:
            whole.setattr(staging, "DELTA", ())
            previewing.append(True)
            preview = _previewed(db, pipeline, "whole", folder) if dry_runs else None
            expected = run_import(pipeline, "whole", folder)
        if dry_runs:
            assert _previewed(db, pipeline, "delta", folder) == preview
        previewing.clear()
        report = run_import(pipeline, "delta", folder)
        assert report.state == expected.state
        assert counts(report) == counts(expected)
        assert _problems(report) == _problems(expected)
        assert _changes(db, report.import_id) == _changes(db, expected.import_id)
        assert _roster(db, "delta") == _roster(db, "whole")
        staged.append(counts(report).get("enrollments", {}))
        if every is not None:
            every.append(counts(report))
    return staged


def _tallies(told: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Of what `_import_both` tells, each import's enrollment counts."""
    return [t for t in told if "entity" not in t]


@pytest.fixture
def both(db: Database) -> Database:
    for tenant in ("delta", "whole"):
        add_tenant(db, tenant, NEVER_PAUSE.updated(max_row_errors=100))
    return db


def test_a_re_import_stages_only_what_can_change_and_imports_the_same(
    both: Database, settings: Settings, uploads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    told = _import_both(both, settings, uploads, monkeypatch, dry_runs=True)

    enrollments = _tallies(told)
    assert [(e["reactivated"], e["deactivated"], e["held"]) for e in enrollments] == [
        (0, 0, 0),
        (0, 40, 7),  # the leavers; the held student's
        (40, 103, 0),  # the leavers back, others gone
        (103, 0, 0),  # those back
    ]
    assert [e["added"] > 0 for e in enrollments] == [True, False, False, True]
    # The first import staged every row (nothing to compare with); each night after it, a
    # delta: of the unchanged rows only the repeated ones (the same row three times, then
    # twice), and the active keys that no unchanged row names (the gone and staged ones).
    deltas = [t for t in told if t.get("entity") == "enrollments"]
    assert [d["repeating"] for d in deltas] == [3, 2, 0]
    assert [d["gone"] for d in deltas] == [40 + 1 + 7, 103, 0]


def test_colliding_hashes_change_nothing(
    both: Database, settings: Settings, uploads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every key of a school hashing alike: only equal keys pair, so the same imports."""
    monkeypatch.setattr(staging_delta, "_hash", lambda keys: keys.get_column("school_id").hash(1))
    told = _import_both(both, settings, uploads, monkeypatch)
    assert len([t for t in told if t.get("entity") == "enrollments"]) == 3


def test_a_key_the_delta_cannot_read_back_stages_every_row(
    both: Database, settings: Settings, uploads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A roster key with a line break in it (rosterdrop stores none): no delta, the same
    imports; the key deactivated with the night's leavers."""
    unreadable = []
    original = staging_delta._active_batches

    def spy(*args: Any) -> Any:
        try:
            yield from original(*args)
        except staging_delta.Unreadable:
            unreadable.append(args[1].name)
            raise

    monkeypatch.setattr(staging_delta, "_active_batches", spy)
    _import_both(both, settings, uploads[:1], monkeypatch)
    _put_key(both, ("SCH0000", "SEC\n1", "S0000000"))

    told = _import_both(both, settings, uploads[1:2], monkeypatch)
    assert unreadable == ["enrollments"]
    assert [t for t in told if t.get("entity") == "enrollments"] == []  # no delta
    assert _tallies(told)[0]["deactivated"] == 41  # the leavers, and the key with a line break


def test_keys_that_differ_only_by_a_byte_order_mark_are_other_keys(
    both: Database, settings: Settings, uploads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A night's stray byte-order mark before a section id (no rule removes it), fixed the
    next night: the roster's odd keys are deactivated and the plain ones added, as without
    a delta (a CSV reader would have dropped the mark and paired them)."""
    odd = "\ufeff"
    rows = _rows(uploads[1] / "enrollments.csv")[1]
    school = rows[0].split(",")[0]
    # Every enrollment of the first school's first section: its key sorts first either way.
    section = min(r.split(",")[1] for r in rows if r.split(",")[0] == school)
    spoiled = uploads[0].parent / "spoiled"
    shutil.copytree(uploads[0], spoiled)
    for name in ("sections.csv", "enrollments.csv"):
        text = (spoiled / name).read_text(encoding="utf-8")
        (spoiled / name).write_bytes(text.replace(f",{section},", f",{odd}{section},").encode())

    told = _import_both(both, settings, [spoiled, uploads[0]], monkeypatch)
    tally = _tallies(told)
    assert tally[1]["added"] == tally[1]["deactivated"] > 0


def test_a_delta_begun_on_a_file_the_engine_then_gives_up_stages_every_row(
    both: Database, settings: Settings, uploads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A value at the end of enrollments.csv runs over more lines than any record may
    (MAX_RECORD_LINES): the engine has checked blocks of the file when it finds out, and
    the careful reader reads the whole file (the delta dropped), to the same end: its
    quote never closes, a fatal problem."""
    broken = uploads[0].parent / "broken"
    shutil.copytree(uploads[1], broken)
    header, rows = _rows(broken / "enrollments.csv")
    school, section, student = rows[-1].split(",")
    spanning = f'{school},{section},"{student}' + "\r\n" * MAX_RECORD_LINES + '"'
    _write(broken / "enrollments.csv", header, [*rows[:-1], spanning])
    begun = []
    block = staging_delta.Delta.block

    def counted(delta: staging_delta.Delta, records: Any) -> Any:
        begun.append(records.height)
        return block(delta, records)

    monkeypatch.setattr(staging_delta.Delta, "block", counted)
    told = _import_both(both, settings, [uploads[0], broken], monkeypatch)
    assert len(begun) > 1  # blocks went through the delta before the engine gave up
    # settled never: every row staged
    assert [t for t in told if t.get("entity") == "enrollments"] == []
    assert _tallies(told)[-1] == {}  # failed alike (`_import_both` compares the problems)


def test_a_roster_key_ending_in_a_carriage_return_is_another_key(
    both: Database, settings: Settings, uploads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """rosterdrop stores no carriage return, but a roster may hold one: the key is not the
    upload's same key without it (a CSV reader would have dropped it), and is deactivated."""
    _import_both(both, settings, uploads[:1], monkeypatch)
    school, section, student = _rows(uploads[1] / "enrollments.csv")[1][10].split(",")
    _put_key(both, (school, section, student + "\r"))  # ending the line the key is read on
    told = _import_both(both, settings, uploads[1:2], monkeypatch)
    assert _tallies(told)[-1]["deactivated"] == 41  # the leavers, and the key with the return


def _put_key(db: Database, key: tuple[str, str, str]) -> None:
    """An active enrollment put into both tenants' rosters by hand, as of their last import."""
    table = roster_tables[ENROLLMENTS.name]
    with db.write() as conn:
        for tenant in ("delta", "whole"):
            tenant_id = tenants.get(conn, tenant).id
            last = sa.select(sa.func.max(imports.c.id)).where(imports.c.tenant_id == tenant_id)
            row = {
                "tenant_id": tenant_id, "school_id": key[0], "section_id": key[1],
                "student_id": key[2], "active": True,
                "created_import_id": last.scalar_subquery(),
                "changed_import_id": last.scalar_subquery(),
                "created_at": sa.func.now(), "changed_at": sa.func.now(),
            }  # fmt: skip
            conn.execute(table.insert().values(**row))


def _edit(path: Path, line: int, column: int, value: str) -> None:
    """Set one value of a data row (line 2 is the first)."""
    header, rows = _rows(path)
    values = rows[line - 2].split(",")
    values[column] = value
    rows[line - 2] = ",".join(values)
    _write(path, header, rows)


def test_nightly_changes_to_every_entity_import_the_same(
    both: Database, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nights of what an SIS export changes (new last names, grades, term ends, leavers and
    arrivals, enrollments moved: each night its own), a bad grade and a bad term end (the
    roster keeps its value), a student held, a co-teacher gone: only enrollments are
    staged as a delta (students' fields cost more to compare in polars, read back from the
    database, than the database's own diff), and every import comes to the same."""
    nights = []
    for night, seed in enumerate((0, 1, 2, 1)):
        folder = tmp_path / f"changes{night}"
        generate(folder, 300, schools=3, change=0.05 if seed else 0.0, seed=seed or 7)
        nights.append(folder)
    _edit(nights[1] / "students.csv", 5, 6, "Q7")  # not a grade: the roster's stays
    _edit(nights[1] / "sections.csv", 4, 6, "31/31/2027")  # not a date: kept too
    _without_first_name(nights[2], "S0000009")
    _edit(nights[2] / "sections.csv", 2, 3, "")  # the first section's co-teacher leaves it

    every: list[dict[str, Any]] = []
    told = _import_both(both, settings, nights, monkeypatch, every)
    settled = {t["entity"] for t in told if "entity" in t}
    assert settled == {"enrollments"}
    # What the nights did (the same both ways, `_import_both` asserts), that the delta met.
    assert every[1]["students"]["updated"] > 0  # new grades
    assert every[2]["students"]["reactivated"] > 0  # leavers back
    assert all(n["sections"]["updated"] for n in every[1:])  # term ends moved
    assert every[2]["students"]["held"] == 1
    assert every[2]["section_teachers"]["deactivated"] == 1  # the co-teacher's link
    assert every[3]["section_teachers"]["reactivated"] == 1


def test_an_import_given_up_while_its_keys_are_read_leaves_no_read_behind(
    db: Database, settings: Settings, uploads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The roster's keys are read ahead, in a thread on a connection of its own, from the
    first school staged. An import that fails before it needs them waits for that read to
    end, and its connection is back in the pool when the import is."""
    add_tenant(db, "acme", NEVER_PAUSE)
    pipeline = pipeline_for(db, settings)
    assert run_import(pipeline, "acme", uploads[0]).state is ImportState.IMPORTED
    broken = uploads[0].parent / "broken"
    shutil.copytree(uploads[1], broken)
    header, rows = _rows(broken / "sections.csv")  # read before enrollments, after schools
    _write(broken / "sections.csv", header, [*rows, rows[-1] + ',"' + "\r\n" * MAX_RECORD_LINES])
    failed, released = threading.Event(), threading.Event()
    fatal, read, ended = ProblemLog.fatal, staging_delta.read, []

    def noted(log: ProblemLog, *args: Any, **where: Any) -> None:
        fatal(log, *args, **where)
        failed.set()

    def held_up(*args: Any) -> Any:
        # Still reading, its connection taken, when the import has failed; let go by the
        # test, or on its own a second later (when the import waits for it, as it must).
        assert failed.wait(30)
        released.wait(1)
        try:
            return read(*args)
        finally:
            ended.append(threading.current_thread().name)

    monkeypatch.setattr(ProblemLog, "fatal", noted)
    monkeypatch.setattr(staging_delta, "read", held_up)
    try:
        report = run_import(pipeline, "acme", broken)
        pool_after = db.engine.pool.checkedout()  # type: ignore[attr-defined]
    finally:
        released.set()

    assert report.state is ImportState.FAILED
    assert [name.startswith("rosterdrop-keys") for name in ended] == [True]
    assert pool_after == 0
