"""A check's files in the archive: kept for `retention_days`, then removed at the bound; the
check's record and its answer in /check/results stay."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.check.checker import Checker
from daemon.clever.files import find_files
from daemon.config import Settings
from daemon.dryrun import DryRunner
from daemon.store import checks, tenants
from daemon.store.database import Database
from tests.support.drop import District

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@SQLITE_ONLY
async def test_archived_checks_expire_after_retention_days(
    settings: Settings, db: Database
) -> None:
    clock = Clock()
    with db.write() as conn:
        tenant = tenants.add(conn, "acme", emails=[], now=clock())
    District("acme", students=6).write(settings.paths.check_dir("acme"))
    checker = Checker(db, settings, DryRunner(settings), clock=clock)
    check_id = checker.receive(tenant, find_files(settings.paths.check_dir("acme")))
    await checker.run(check_id)
    with db.read() as conn:
        record = checks.get(conn, check_id)
    archived = Path(record.files_dir or "")
    assert archived.parent == settings.paths.archive / "acme"
    assert (archived / "students.csv").exists()

    days = settings.spool.retention_days
    assert record.archived_at is not None
    clock.now = record.archived_at + timedelta(days=days) - timedelta(seconds=1)
    assert checker.expire(days) == 0  # not yet: at the bound it is still kept
    clock.now += timedelta(seconds=2)
    assert checker.expire(days) == 1
    assert not await asyncio.to_thread(archived.exists)
    with db.read() as conn:
        after = checks.get(conn, check_id)
    assert after.files_dir is None
    assert after.result is not None  # the record and its answer stay
    assert any(settings.paths.check_results("acme").iterdir())
