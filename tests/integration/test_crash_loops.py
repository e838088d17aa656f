"""An import that keeps dying is failed, not retried for ever; its retries come further apart.

The pipeline counts each start of an import: one that has started MAX_ATTEMPTS times without
reaching an end fails with `too_many_attempts` (the district is told, the roster stays). The
runner restarts a process that died after a pause that grows by four each time, to a ceiling.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from daemon import runner
from daemon.clever.files import find_files
from daemon.config import Settings, load_settings
from daemon.pipeline import MAX_ATTEMPTS, Pipeline
from daemon.roster.outcome import ImportState
from daemon.runner import ImportRunner
from daemon.store import imports, tenants
from daemon.store.database import Database
from tests.support import drop
from tests.support.clever import FIXTURES
from tests.support.process import free_port
from tests.support.roster import add_tenant, roster


def claimed_after_crashes(db: Database, settings: Settings, crashes: int) -> tuple[Pipeline, int]:
    """An upload whose import process has died `crashes` times part-way (each start counted)."""
    add_tenant(db, "acme")
    pipeline = Pipeline(db, settings.paths, settings.smtp)
    with db.read() as conn:
        tenant = tenants.get(conn, "acme")
    import_id = pipeline.receive(
        tenant, find_files(FIXTURES / "sis_export"), source="sftp", move=False
    )
    with db.write() as conn:
        state = ImportState.VALIDATING if crashes else ImportState.RECEIVED
        imports.update(conn, import_id, datetime.now(UTC), state=state, attempts=crashes)
    return pipeline, import_id


def test_an_import_that_stopped_max_attempts_times_fails_and_says_why(
    db: Database, settings: Settings
) -> None:
    pipeline, import_id = claimed_after_crashes(db, settings, MAX_ATTEMPTS)

    report = pipeline.run(import_id)

    assert report.state is ImportState.FAILED
    [fatal] = [p for p in report.problems if p.severity == "fatal"]
    assert fatal.code == "too_many_attempts"
    assert f"stopped {MAX_ATTEMPTS} times" in fatal.message
    assert all(not rows for rows in roster(db, "acme").values()), "nothing was applied"
    assert [e["import_id"] for e in drop.emails(db, "import_results")] == [import_id]


def test_the_last_allowed_attempt_still_imports(db: Database, settings: Settings) -> None:
    pipeline, import_id = claimed_after_crashes(db, settings, MAX_ATTEMPTS - 1)

    report = pipeline.run(import_id)

    assert report.state is ImportState.IMPORTED
    assert roster(db, "acme")["students"]


async def test_a_process_that_always_dies_is_retried_ever_further_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The database is unreachable: each import process exits 1 at once, as it would while
    # PostgreSQL is away. Pauses of 0.05 s growing by four to 0.8 s keep the test short.
    monkeypatch.setattr(runner, "RETRY_FIRST_SECONDS", 0.05)
    monkeypatch.setattr(runner, "RETRY_MAX_SECONDS", 0.8)
    unreachable = f"postgresql+psycopg://rd@127.0.0.1:{free_port()}/rd"
    settings = load_settings(
        None, {"ROSTERDROP_DATA_DIR": str(tmp_path), "ROSTERDROP_DATABASE_URL": unreachable}
    )
    loop = asyncio.get_running_loop()
    ended: list[float] = []
    five_ended = asyncio.Event()

    def done(import_id: int) -> None:
        ended.append(loop.time())
        if len(ended) == 5:
            five_ended.set()

    await asyncio.to_thread(runner.warm_up)  # as serve does: each process forks ready
    imports_runner = ImportRunner(settings, on_done=done)
    with capture_logs() as logs:
        imports_runner.submit("acme", 7)
        await asyncio.wait_for(five_ended.wait(), 30)
        await imports_runner.stop(5)

    retries = [e for e in logs if e["event"] == "import process ended abnormally; it runs again"]
    delays = [e["in_seconds"] for e in retries[:4]]
    assert delays == [0.05, 0.2, 0.8, 0.8]
    assert {(e["import_id"], e["exitcode"]) for e in retries} == {(7, 1)}
    gaps = [later - earlier for earlier, later in itertools.pairwise(ended[:5])]
    assert all(gap >= delay for gap, delay in zip(gaps, delays, strict=True)), (gaps, delays)
