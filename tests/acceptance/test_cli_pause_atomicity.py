"""A pause commits its kept change list with its state, or neither: an import killed at the
pause's commit is recorded as neither paused nor with any of its list, and its next run
pauses with the whole list (the roster untouched throughout)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from daemon.config import Settings
from daemon.roster.outcome import ImportState
from daemon.store.database import Database
from daemon.store.tables import import_changes
from daemon.testpoint import STOP_AT
from tests.acceptance.test_cli_atomicity import (  # noqa: F401 - the module's district
    _open_transactions,
    _state,
    _wait,
    district,
)
from tests.support.roster import ROSTERDROP, pipeline_for, rosterdrop, rosterdrop_env, tables

pytestmark = pytest.mark.slow

POINT = "pause-before-commit"


def _kept(db: Database, import_id: int) -> dict[str, int]:
    with db.read() as conn:
        query = (
            sa.select(import_changes.c.kind, sa.func.count())
            .where(import_changes.c.import_id == import_id)
            .group_by(import_changes.c.kind)
        )
        return {kind: n for kind, n in conn.execute(query)}


def test_an_import_killed_at_its_pause_keeps_no_list_and_its_next_run_keeps_all_of_it(
    settings: Settings,
    db: Database,
    district: tuple[Path, Path],  # noqa: F811
) -> None:
    day1, day2 = district
    env = rosterdrop_env(settings)
    assert rosterdrop(env, "tenant", "add", "acme", "--no-password").returncode == 0
    assert rosterdrop(env, "import", str(day1), "--tenant", "acme").returncode == 0
    before = tables(db, "acme")

    stops = settings.data_dir / "stops"
    stops.mkdir(parents=True)
    importer = subprocess.Popen(
        [str(ROSTERDROP), "import", str(day2), "--tenant", "acme"],
        env={**env, STOP_AT: f"{POINT}:{stops}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(lambda: (stops / f"{POINT}.reached").exists(), "the pause to reach its commit")
        os.kill(importer.pid, signal.SIGKILL)
    finally:
        if importer.poll() is None:
            importer.kill()
        importer.wait(30)

    if db.is_postgres:
        _wait(lambda: not _open_transactions(db), "the dead import's rollback")
    assert _state(db, 2) is ImportState.VALIDATING  # not paused
    assert _kept(db, 2) == {}  # and not one row of its list
    assert tables(db, "acme") == before

    pipeline = pipeline_for(db, settings)
    assert pipeline.recover() == [("acme", 2)]
    report = pipeline.run(2)

    assert report.state is ImportState.PAUSED
    assert tables(db, "acme") == before
    planned = {"update": 0, "deactivate": 0, "add": 0, "reactivate": 0}
    for changes in report.entities.values():
        planned["update"] += changes.updated
        planned["deactivate"] += changes.deactivated
        planned["add"] += changes.added
        planned["reactivate"] += changes.reactivated
    assert {k: v for k, v in planned.items() if v} == _kept(db, 2)
    assert planned["deactivate"] > 0
