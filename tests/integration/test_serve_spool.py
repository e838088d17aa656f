"""What the watcher claims, and when: settled complete sets only, never a file being written."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from serve_fixtures import Served, add_tenant, serving
from sftp_fixtures import PASSWORD

from daemon.config import Settings
from daemon.errors import Conflict
from daemon.pipeline import Pipeline
from daemon.service import Service
from daemon.spool import IncompleteSet, ReadySet, Spool, is_partial, partial_name
from daemon.store.database import Database
from daemon.store.tables import import_problems
from tests.support import drop
from tests.support.drop import District, roster_ids

# What is claimed when is the watcher's business, whichever database records it.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def quiet_period(served: Served) -> None:
    """Long enough for the watcher to have claimed anything it would claim."""
    spool = served.settings.spool
    await asyncio.sleep(2 * (spool.settle_seconds + spool.rescan_seconds))


async def test_a_dropped_connection_publishes_nothing_and_imports_nothing(served: Served) -> None:
    tenant = served.add_tenant("acme")
    files = District("acme", students=2000).files()
    enrollments = files.pop("enrollments.csv")

    def upload_then_drop() -> None:
        with drop.sftp_session(served.port, tenant, PASSWORD) as sftp:
            drop.upload(sftp, files)
            handle = sftp.open("/upload/enrollments.csv", "wb")
            handle.write(enrollments[: len(enrollments) // 2])
            handle.flush()
            transport = sftp.get_channel().get_transport()
            transport.sock.shutdown(socket.SHUT_RDWR)  # the SIS's network goes away mid-file
            transport.close()

    await asyncio.to_thread(upload_then_drop)
    await served.wait(
        lambda: not any(is_partial(p.name) for p in served.upload_dir(tenant).iterdir()) or None,
        "the aborted upload to be discarded",
    )
    await quiet_period(served)
    assert sorted(p.name for p in served.upload_dir(tenant).iterdir()) == sorted(files)
    assert drop.import_rows(served.db, tenant) == []

    # The scheduler's next run completes the set, which imports normally.
    await asyncio.to_thread(served.upload, tenant, {"enrollments.csv": enrollments})
    [row] = await served.imports_ended(tenant)
    assert row["state"] == "imported"
    assert len(served.roster(tenant)["enrollments"]) == 4000


async def test_a_set_is_not_claimed_while_a_file_is_being_written(
    serve_settings_with: Callable[..., Settings], db: Database, sftp_password_hash: str
) -> None:
    settings = serve_settings_with(ROSTERDROP_SETTLE_SECONDS="0.6")
    small, large = District("acme", students=10), District("acme", students=40)
    async with serving(settings, db, sftp_password_hash) as served:
        tenant = served.add_tenant("acme")

        def upload_then_hold() -> tuple[float, int]:
            with drop.sftp_session(served.port, tenant, PASSWORD) as sftp:
                drop.upload(sftp, small.files())  # a complete set, five final names
                students = large.files()["students.csv"]
                # The SIS re-sends students.csv and stalls half-way for longer than the
                # settle time: the older complete set must not be claimed meanwhile.
                with sftp.open("/upload/students.csv", "wb") as handle:
                    handle.write(students[:100])
                    handle.flush()
                    time.sleep(2 * settings.spool.settle_seconds + settings.spool.rescan_seconds)
                    claimed = len(drop.import_rows(db, tenant))
                    handle.write(students[100:])
                    closing = time.time()
                return closing, claimed

        closed, claimed_while_held = await asyncio.to_thread(upload_then_hold)
        assert claimed_while_held == 0
        [row] = await served.imports_ended(tenant)
        # Settled from the end of the stalled file, not from the set's first completion.
        assert row["received_at"].timestamp() - closed >= settings.spool.settle_seconds
        ids = roster_ids(served.roster(tenant), "students", "student_id")
        assert ids == set(large.student_ids())
        assert row["state"] == "imported"


async def test_other_files_stay_in_upload_and_are_reported(served: Served) -> None:
    tenant = served.add_tenant("acme")
    others = {"notes.txt": b"exported by the SIS", "students_old.csv": b"school_id\r\n"}
    await asyncio.to_thread(served.upload, tenant, {**District("acme").files(), **others})

    [row] = await served.imports_ended(tenant)
    assert row["state"] == "imported"
    assert sorted(p.name for p in served.upload_dir(tenant).iterdir()) == sorted(others)
    with served.db.read() as conn:
        warnings = conn.execute(
            sa.select(import_problems.c.code, import_problems.c.message).where(
                import_problems.c.import_id == row["id"],
                import_problems.c.severity == "warning",
            )
        ).all()
    [(code, message)] = warnings
    assert code == "other_files"
    assert "notes.txt" in message
    assert "students_old.csv" in message
    # Left-over files alone are not a set: nothing more is claimed.
    await quiet_period(served)
    assert len(drop.import_rows(served.db, tenant)) == 1


async def test_partial_uploads_left_by_a_crash_are_removed_at_startup(
    serve_settings: Settings, db: Database, sftp_password_hash: str
) -> None:
    upload = serve_settings.paths.upload_dir("acme")
    upload.mkdir(parents=True)
    abandoned = upload / partial_name("students.csv")
    abandoned.write_bytes(b"school_id,student_id\r\nSCH1,")
    # One node (SQLite): even a partial written a moment ago is a crash's (a cluster's node
    # leaves those alone: tests/acceptance/test_cluster_nodes.py).
    recent = upload / partial_name("teachers.csv")
    recent.write_bytes(b"school_id,teacher_id\r\n")
    kept = upload / "schools.csv"
    kept.write_bytes(b"school_id,school_name\r\n")
    async with serving(serve_settings, db, sftp_password_hash):
        assert not abandoned.exists()
        assert not recent.exists()
        assert kept.exists()


class ScanCounter:
    """Counts the watcher's completed scans of the upload folders (they run in a thread)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.done = 0
        scan = Spool.scan

        def counted(spool: Spool) -> tuple[list[ReadySet], list[IncompleteSet], float]:
            result = scan(spool)
            self.done += 1
            return result

        monkeypatch.setattr(Spool, "scan", counted)


async def test_files_put_there_without_sftp_wake_the_watcher(
    serve_settings_with: Callable[..., Settings],
    db: Database,
    sftp_password_hash: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The periodic rescan is an hour away: only watchdog can notice these files in time.
    settings = serve_settings_with(ROSTERDROP_SPOOL_RESCAN_SECONDS="3600")
    add_tenant(db, settings, "early", sftp_password_hash)
    scans = ScanCounter(monkeypatch)
    async with serving(settings, db, sftp_password_hash) as served:
        await served.wait(lambda: scans.done or None, "the startup scan")  # it found nothing
        District("early").write(served.upload_dir("early"))
        done = scans.done
        served.add_tenant("late")  # a tenant added while the daemon runs
        # Its new folder woke the watcher, which now watches the upload folder in it too.
        await served.wait(lambda: scans.done > done or None, "a scan after the new tenant")
        District("late").write(served.upload_dir("late"))
        for tenant in ("early", "late"):
            [row] = await served.imports_ended(tenant, seconds=10)
            assert row["state"] == "imported"


def test_an_upload_left_open_is_not_polled_while_it_lasts(serve_settings: Settings) -> None:
    """A client that stalls with a file open (until its session times out) is waited for on
    the upload's end, which is an event, not by scanning every tenant twenty times a second."""
    paths, spool_settings = serve_settings.paths, serve_settings.spool
    District("acme").write(paths.upload_dir("acme"))
    open_uploads = {"acme": 1}
    spool = Spool(
        spool_settings, paths, busy=lambda tenant: open_uploads[tenant],
        clock=lambda: time.time() + 60,  # everything on disk is a minute old
    )  # fmt: skip
    assert spool.scan() == ([], [], spool_settings.rescan_seconds)
    open_uploads["acme"] = 0
    ready, _, _ = spool.scan()
    assert ready == [ReadySet("acme", paths.upload_dir("acme"))]


def test_a_stuck_set_stays_due_for_its_report_until_the_report_is_written(
    serve_settings: Settings,
) -> None:
    """The report of a stuck set is remembered only once its email is in the outbox: if the
    database refused it, the next scan (or the next start) offers it again."""
    paths, spool_settings = serve_settings.paths, serve_settings.spool
    files, upload = District("acme").files(), paths.upload_dir("acme")
    upload.mkdir(parents=True, exist_ok=True)
    (upload / "schools.csv").write_bytes(files["schools.csv"])
    days_later = time.time() + spool_settings.stale_hours * 3600 + 60

    def scan() -> list[str]:
        spool = Spool(spool_settings, paths, clock=lambda: days_later)  # as after a restart
        return [s.tenant for s in spool.scan()[1]]

    assert scan() == ["acme"]
    assert scan() == ["acme"]  # not written to the outbox yet: still due
    spool = Spool(spool_settings, paths, clock=lambda: days_later)
    [stuck] = spool.scan()[1]
    spool.reported(stuck)
    assert scan() == []
    # A changed stuck set is a new one.
    (upload / "students.csv").write_bytes(files["students.csv"])
    assert scan() == ["acme"]


async def test_an_older_case_twin_goes_with_the_set_that_replaced_it(served: Served) -> None:
    """Students.csv from an old export beside today's students.csv: the newer is imported;
    the older is reported and kept with the import, not left behind to look like the start
    of a new upload (and, a day later, an Incomplete upload email)."""
    tenant = served.add_tenant("acme")
    old, new = District("acme", students=10).files(), District("acme", students=14).files()
    await asyncio.to_thread(served.upload, tenant, {"Students.csv": old["students.csv"]})
    today = {"students.csv": new.pop("students.csv"), **new}
    await asyncio.to_thread(served.upload, tenant, today)

    [row] = await served.imports_ended(tenant)
    assert row["state"] == "imported"
    assert list(served.upload_dir(tenant).iterdir()) == []
    report = Pipeline(served.db, served.settings.paths, served.settings.smtp).report(row["id"])
    [twin] = [p for p in report.problems if p.code == "ignored_file"]
    assert twin.message == "Students.csv was ignored: students.csv has the same name and is newer"
    archived = served.settings.paths.archive / tenant / str(row["id"])
    assert (archived / "Students.csv").read_bytes() == old["students.csv"]
    students = roster_ids(served.roster(tenant), "students", "student_id")
    assert students == set(District("acme", students=14).student_ids())


async def test_a_second_serve_on_the_same_data_leaves_the_first_ones_uploads_alone(
    served: Served,
) -> None:
    tenant = served.add_tenant("acme")
    files = District("acme").files()
    students = files.pop("students.csv")
    half_sent, go_on = threading.Event(), threading.Event()

    def upload() -> None:
        with drop.sftp_session(served.port, tenant, PASSWORD) as sftp:
            drop.upload(sftp, files)
            with sftp.open("/upload/students.csv", "wb") as handle:
                handle.write(students[:100])
                handle.flush()
                half_sent.set()
                assert go_on.wait(30)
                handle.write(students[100:])

    uploading = asyncio.create_task(asyncio.to_thread(upload))
    assert await asyncio.to_thread(half_sent.wait, 30)
    try:
        # A cron job's `serve --once` beside the daemon: it would take the partial upload for
        # one a crash abandoned, and delete it.
        with pytest.raises(Conflict, match="another `rosterdrop serve` is running"):
            await Service(served.settings, served.db).serve(once=True)
    finally:
        go_on.set()
        await uploading
    [row] = await served.imports_ended(tenant)
    assert row["state"] == "imported"


async def test_a_set_is_claimed_no_sooner_than_the_settle_time_after_its_last_close(
    serve_settings_with: Callable[..., Settings], db: Database, sftp_password_hash: str
) -> None:
    settings = serve_settings_with(ROSTERDROP_SETTLE_SECONDS="1.5")
    files = District("acme").files()
    last = files.pop("enrollments.csv")
    async with serving(settings, db, sftp_password_hash) as served:
        tenant = served.add_tenant("acme")

        def upload() -> float:
            with drop.sftp_session(served.port, tenant, PASSWORD) as sftp:
                drop.upload(sftp, files)
                handle = sftp.open("/upload/enrollments.csv", "wb")
                handle.write(last)
                closing = time.time()  # before the server can have seen the close
                handle.close()
                return closing

        closed = await asyncio.to_thread(upload)
        [row] = await served.imports_ended(tenant)
    assert row["state"] == "imported"
    waited = row["received_at"].timestamp() - closed
    assert waited >= settings.spool.settle_seconds


async def test_serve_once_leaves_a_set_that_has_not_settled_for_a_later_run(
    serve_settings_with: Callable[..., Settings], db: Database, sftp_password_hash: str
) -> None:
    """A cron job's `serve --once` beside an sshd still writing: files younger than the
    settle time stay where they are; a run after they settled imports them."""
    settings = serve_settings_with(ROSTERDROP_SETTLE_SECONDS="60")
    add_tenant(db, settings, "acme", sftp_password_hash)
    upload = District("acme").write(settings.paths.upload_dir("acme"))

    assert await Service(settings, db).serve(once=True) == 0
    assert drop.import_rows(db, "acme") == []
    assert sorted(p.name for p in upload.iterdir()) == sorted(District("acme").files())

    settled = time.time() - settings.spool.settle_seconds
    for path in upload.iterdir():
        os.utime(path, (settled, settled))
    assert await Service(settings, db).serve(once=True) == 0
    [row] = drop.import_rows(db, "acme")
    assert row["state"] == "imported"
