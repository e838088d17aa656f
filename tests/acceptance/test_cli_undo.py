"""`rosterdrop imports undo ID` (issue 14), as an operator runs it: a district's bad upload
was approved by mistake, and the roster goes back to what it was, through the real command.

The kill test holds the undo at its last statement before the commit (daemon/testpoint.py)
and kills the process there: the roster must be as it was before the undo, and the restart's
recovery must finish the undo, once.
"""

from __future__ import annotations

import email
import json
import os
import signal
import subprocess
import time
from email.message import Message
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench.district import generate
from daemon.config import Settings
from daemon.roster.outcome import ImportState
from daemon.store import imports
from daemon.store.database import Database
from daemon.store.tables import audit_log, outbox
from daemon.testpoint import STOP_AT
from tests.support.roster import ROSTERDROP, pipeline_for, rosterdrop, rosterdrop_env
from tests.support.undoing import State, assert_restored, state

STUDENTS = 300
POINT = "undo-before-commit"


@pytest.fixture
def district(
    db: Database, settings: Settings, tmp_path: Path
) -> tuple[dict[str, str], State, State]:
    """A tenant that imported day 1 (import #1), then a day 2 with 30 % changed (#2): the
    command's environment, and the roster after each."""
    env = rosterdrop_env(settings)
    generate(tmp_path / "day1", STUDENTS)
    generate(tmp_path / "day2", STUDENTS, change=0.3)
    assert rosterdrop(env, "tenant", "add", "acme", "--no-password").returncode == 0
    limits = ("--max-deactivate-percent", "100", "--max-update-percent", "100")
    assert rosterdrop(env, "tenant", "set", "acme", *limits).returncode == 0
    after = []
    for day in ("day1", "day2"):
        assert rosterdrop(env, "import", str(tmp_path / day), "--tenant", "acme").returncode == 0
        after.append(state(db, "acme"))
    return env, after[0], after[1]


def _email_of(db: Database, import_id: int) -> Message:
    with db.read() as conn:
        raw = conn.execute(
            sa.select(outbox.c.message).where(outbox.c.import_id == import_id)
        ).scalar_one()
    return email.message_from_bytes(raw)


def _text(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text part")


def test_an_operator_undoes_an_import_and_redoes_it(
    db: Database, district: tuple[dict[str, str], State, State]
) -> None:
    env, after_day1, after_day2 = district

    dry = rosterdrop(env, "imports", "undo", "2", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    shown = json.loads(dry.stdout)
    assert shown["undone"] == [2]
    assert shown["counts"]["students"]["deactivated"] > 0  # day 2's newcomers go
    assert state(db, "acme") == after_day2  # only shown

    older = rosterdrop(env, "imports", "undo", "1")
    assert older.returncode == 1
    assert "import #1 is not the newest applied import (#2 is)" in older.stderr
    assert "imports #2 and #1" in older.stderr
    assert "--back-to" in older.stderr
    assert "undoes #2, #1 (newest first) and would:" in older.stdout  # what it would change
    assert state(db, "acme") == after_day2

    done = rosterdrop(env, "imports", "undo", "2", "--by", "registrar", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["id"], report["source"], report["state"]) == (3, "undo", "imported")
    assert report["counts"] == shown["counts"]
    assert_restored(state(db, "acme"), after_day1)
    text = _text(_email_of(db, 3))  # the district hears of it, as of any import
    assert "undid import #2" in text
    with db.read() as conn:
        entry = conn.execute(sa.select(audit_log).where(audit_log.c.action == "undo")).one()
        assert imports.get(conn, 3).undoes == 2
    assert (entry.user_name, entry.import_id, entry.address) == ("registrar", 3, "cli")
    listed = rosterdrop(env, "imports", "list", "--json")  # in the history
    assert [(r["id"], r["source"]) for r in json.loads(listed.stdout)][:2] == [
        (3, "undo"),
        (2, "cli"),
    ]

    redo = rosterdrop(env, "imports", "undo", "3")
    assert redo.returncode == 0, redo.stderr
    assert "import #4 for acme: imported" in redo.stdout
    assert state(db, "acme") == after_day2

    refused = rosterdrop(env, "imports", "undo", "99")
    assert refused.returncode == 2
    assert "no import #99" in refused.stderr


def _wait_for(path: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {path.name}")
        time.sleep(0.05)


def test_a_killed_undo_leaves_the_roster_as_before_and_recovery_finishes_it(
    db: Database, settings: Settings, district: tuple[dict[str, str], State, State]
) -> None:
    env, after_day1, after_day2 = district
    stops = settings.data_dir / "stops"
    stops.mkdir(parents=True)

    undoing = subprocess.Popen(
        [str(ROSTERDROP), "imports", "undo", "2"],
        env={**env, STOP_AT: f"{POINT}:{stops}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(stops / f"{POINT}.reached")  # every row written, the commit next
        os.kill(undoing.pid, signal.SIGKILL)
    finally:
        if undoing.poll() is None:
            undoing.kill()
        undoing.wait(30)

    assert undoing.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 60
    while state(db, "acme") != after_day2:  # PostgreSQL rolls the dead session back
        assert time.monotonic() < deadline, "the killed undo's rows are still there"
        time.sleep(0.05)
    with db.read() as conn:
        assert imports.get(conn, 3).state is ImportState.VALIDATING  # it never finished

    pipeline = pipeline_for(db, settings)
    assert pipeline.recover() == [("acme", 3)]
    report = pipeline.run(3)

    assert report.state is ImportState.IMPORTED, report.problems
    assert pipeline.recover() == []
    assert_restored(state(db, "acme"), after_day1)
    with db.read() as conn:
        assert imports.get(conn, 3).attempts == 2  # the killed run and the one that finished
        assert (
            conn.execute(sa.select(sa.func.count()).where(outbox.c.import_id == 3)).scalar_one()
            == 1
        )  # one email: the killed run's went with its transaction
