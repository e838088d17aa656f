"""Restarts: an interrupted claim is undone, and a failed start stops what it began."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest
from serve_fixtures import add_tenant, serving

from daemon.clever.files import find_files
from daemon.config import Settings
from daemon.pipeline import Pipeline
from daemon.roster.entities import FILES
from daemon.service import Service
from daemon.sftp import SftpError
from daemon.store.database import Database
from tests.support import drop
from tests.support.drop import District, roster_ids


async def test_an_interrupted_claim_is_undone_and_claimed_again(
    serve_settings: Settings, db: Database, sftp_password_hash: str
) -> None:
    paths = serve_settings.paths
    add_tenant(db, serve_settings, "acme", sftp_password_hash)
    district = District("acme", students=16)
    upload = district.write(paths.upload_dir("acme"))
    folder = drop.interrupted_claim(db, paths, "acme", ["schools.csv", "students.csv"])
    assert [r["state"] for r in drop.import_rows(db)] == ["received"]

    assert Pipeline(db, paths, serve_settings.smtp).recover() == []
    assert sorted(p.name for p in upload.iterdir()) == sorted(FILES)
    assert not folder.exists()
    assert drop.import_rows(db) == []

    async with serving(serve_settings, db, sftp_password_hash) as served:
        [row] = await served.imports_ended("acme")
        assert row["state"] == "imported"
        ids = roster_ids(served.roster("acme"), "students", "student_id")
        assert ids == set(district.student_ids())


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_start_that_fails_stops_the_imports_it_began(
    serve_settings_with: Callable[..., Settings], db: Database, sftp_password_hash: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings = serve_settings_with(ROSTERDROP_SFTP_PORT=str(taken.getsockname()[1]))
        tenant = add_tenant(db, settings, "acme", sftp_password_hash)
        # A set claimed before the last stop: recovery starts its import at once.
        upload = District("acme", students=20_000).write(settings.paths.upload_dir("acme"))
        Pipeline(db, settings.paths, settings.smtp).receive(
            tenant, find_files(upload), source="sftp", move=True
        )
        service = Service(settings, db)
        with pytest.raises(SftpError):
            await service.serve()
    assert service.runner.busy == 0  # not left running behind the failed start
    [row] = drop.import_rows(db)
    assert row["state"] == "imported"  # it was given the shutdown's grace to finish


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_claim_that_fails_half_way_is_undone_at_once(
    serve_settings: Settings, db: Database, sftp_password_hash: str
) -> None:
    paths = serve_settings.paths
    district = District("acme", students=16)
    # The first import's spool folder cannot take teachers.csv: the claim fails after moving
    # schools.csv and students.csv, as a full disk or an I/O error would make it fail.
    (paths.spool / "acme" / "1" / "teachers.csv").mkdir(parents=True)
    async with serving(serve_settings, db, sftp_password_hash) as served:
        served.add_tenant("acme")
        await asyncio.to_thread(served.upload, "acme", district.files())
        [row] = await served.imports_ended("acme", seconds=15)
    assert row["state"] == "imported"  # claimed again by the next scan; the failed claim's row
    # is gone (SQLite may even give its id to the new one)
    assert roster_ids(served.roster("acme"), "students", "student_id") == set(
        district.student_ids()
    )
