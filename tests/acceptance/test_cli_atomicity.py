"""A `rosterdrop import` killed (SIGKILL) in the middle of applying a large upload leaves the
previous roster intact, on both databases; the daemon's recovery then completes it, once.

Where the kill lands: at the last moment of the apply, every row written in its transaction
and the commit next. The import waits there at a test-only stopping point
(daemon/testpoint.py), so the kill lands there for certain, however busy the machine is.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench.district import generate
from daemon.config import Settings
from daemon.errors import NotFound
from daemon.roster.outcome import ImportState
from daemon.store import imports, tenants
from daemon.store.database import Database
from daemon.store.roster import active_counts
from daemon.testpoint import STOP_AT
from tests.support.roster import ROSTERDROP, pipeline_for, rosterdrop, rosterdrop_env, tables

pytestmark = pytest.mark.slow

STUDENTS = 5_000  # 35,000 enrollments
POINT = "apply-before-commit"
OPEN_TRANSACTIONS = sa.text(
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
)


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A district, and its next export with about 30 % of the rows changed."""
    root = tmp_path_factory.mktemp("district")
    generate(root / "day1", STUDENTS)
    generate(root / "day2", STUDENTS, change=0.3)
    return root / "day1", root / "day2"


def _wait(
    check: Callable[[], object], what: str, seconds: float = 60, every: float = 0.05
) -> object:
    deadline = time.monotonic() + seconds
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)
    return result


def _state(db: Database, import_id: int) -> ImportState | None:
    with db.read() as conn:
        try:
            return imports.get(conn, import_id).state
        except NotFound:  # not received yet
            return None


def _rows(folder: Path) -> dict[str, int]:
    """The records an export holds, by entity (its rows are all valid)."""

    def read(name: str) -> list[dict[str, str]]:
        with (folder / name).open(newline="", encoding="utf-8") as handle:
            return [{k.lower(): v for k, v in row.items()} for row in csv.DictReader(handle)]

    sections = read("sections.csv")
    enrollments = {
        (r["school_id"], r["section_id"], r["student_id"]) for r in read("enrollments.csv")
    }
    return {
        "schools": len(read("schools.csv")),
        "teachers": len(read("teachers.csv")),
        "students": len(read("students.csv")),
        "sections": len(sections),
        "section_teachers": sum(1 for r in sections for k, v in r.items() if "teacher" in k and v),
        "enrollments": len(enrollments),
    }


def test_a_killed_import_leaves_the_roster_intact_and_recovery_completes_it(
    settings: Settings, db: Database, district: tuple[Path, Path]
) -> None:
    day1, day2 = district
    env = rosterdrop_env(settings)
    assert rosterdrop(env, "tenant", "add", "acme", "--no-password").returncode == 0
    limits = ("--max-deactivate-percent", "100", "--max-update-percent", "100")
    assert rosterdrop(env, "tenant", "set", "acme", *limits).returncode == 0
    assert rosterdrop(env, "import", str(day1), "--tenant", "acme").returncode == 0
    before = tables(db, "acme")
    assert len(before["enrollments"]) == _rows(day1)["enrollments"]

    stops = settings.data_dir / "stops"
    stops.mkdir(parents=True)
    importer = subprocess.Popen(
        [str(ROSTERDROP), "import", str(day2), "--tenant", "acme"],
        env={**env, STOP_AT: f"{POINT}:{stops}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(lambda: (stops / f"{POINT}.reached").exists(), "the apply to reach its commit")
        os.kill(importer.pid, signal.SIGKILL)
    finally:
        if importer.poll() is None:
            importer.kill()
        importer.wait(30)

    assert importer.returncode == -signal.SIGKILL
    if db.is_postgres:
        _wait(lambda: not _open_transactions(db), "the dead import's rollback")
    assert _state(db, 2) is ImportState.VALIDATING  # it never finished
    assert tables(db, "acme") == before  # not one row of it applied

    pipeline = pipeline_for(db, settings)
    assert pipeline.recover() == [("acme", 2)]
    report = pipeline.run(2)

    assert report.state is ImportState.IMPORTED, report.problems
    assert pipeline.recover() == []
    with db.read() as conn:
        assert active_counts(conn, tenants.get(conn, "acme").id) == _rows(day2)
        assert imports.get(conn, 2).attempts == 2  # the killed run and the one that finished
        assert [r.id for r in imports.list_recent(conn)] == [2, 1]
    assert report.entities["enrollments"].deactivated > 0
    assert report.entities["students"].added > 0


def _open_transactions(db: Database) -> int:
    """How many other sessions of this database are in a transaction (PostgreSQL)."""
    with db.read() as conn:
        return int(conn.execute(OPEN_TRANSACTIONS).scalar_one())
