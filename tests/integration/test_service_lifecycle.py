"""The Service in this process: what it tells systemd, how it stops, readiness, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import json
import os
import shutil
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import paramiko
import pytest
from prometheus_client.parser import text_string_to_metric_families
from serve_fixtures import add_tenant
from sftp_fixtures import PASSWORD

from daemon import runner as runner_module
from daemon import tasks
from daemon.config import Settings
from daemon.errors import StoreError
from daemon.service import Service
from daemon.sftp import SftpError
from daemon.store.database import Database
from daemon.systemd import Notifier
from tests.support import drop
from tests.support.clever import FIXTURES
from tests.support.process import notify_socket
from tests.support.roster import add_tenant as add_roster_tenant
from tests.support.roster import pipeline_for, run_import

STARTUP_SECONDS = 20.0


@pytest.fixture
def settings(make_settings: Callable[..., Settings], sftp_host_keys: Path) -> Settings:
    """SQLite only (the database is not what these tests are about), the session's host keys."""
    quick = make_settings()
    shutil.copytree(sftp_host_keys, quick.paths.host_keys, dirs_exist_ok=True)
    return quick


@contextlib.asynccontextmanager
async def started(service: Service) -> AsyncIterator[asyncio.Task[int]]:
    task = asyncio.create_task(service.serve())
    ready = asyncio.create_task(service.ready.wait())
    await asyncio.wait([task, ready], timeout=STARTUP_SECONDS, return_when="FIRST_COMPLETED")
    assert service.ready.is_set(), "the service did not start"
    try:
        yield task
    finally:
        service.stop()
        await asyncio.wait_for(task, STARTUP_SECONDS)


def _get(port: int, path: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def test_watchdog_usec_without_a_socket_does_not_stop_the_service(
    settings: Settings, db: Database
) -> None:
    """WATCHDOG_USEC inherited without NOTIFY_SOCKET used to end the daemon at once (exit 0):
    its watchdog task returned, and the main loop took that for a stop."""
    service = Service(settings, db, notifier=Notifier({"WATCHDOG_USEC": "30000"}))
    async with started(service) as task:
        await asyncio.sleep(0.3)
        assert not task.done()
    assert task.result() == 0


async def test_a_background_task_that_ends_stops_the_service_with_exit_1(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = Service(settings, db)

    async def housekeeping() -> None:
        return None  # ends at once, as a broken loop would

    monkeypatch.setattr(service, "_housekeeping", housekeeping)
    task = asyncio.create_task(service.serve())
    assert await asyncio.wait_for(task, STARTUP_SECONDS) == 1


async def test_reload_is_announced_to_systemd_only_once_ready(
    settings: Settings, db: Database
) -> None:
    with notify_socket() as notify:
        notifier = Notifier({"NOTIFY_SOCKET": notify.path})
        service = Service(settings, db, notifier=notifier, reload=lambda: settings)
        service.reload()  # a SIGHUP before the start is done: no READY=1 too early
        assert notify.drain() == []
        async with started(service):
            [ready] = await asyncio.to_thread(notify.drain)
            assert ready["READY"] == "1"
            assert ready["STATUS"] == service.status
            assert f"SFTP on port {service.sftp.port}" in service.status
            service.reload()
            reloading, ready_again = await asyncio.to_thread(notify.drain)
            assert reloading["RELOADING"] == "1"
            assert ready_again["READY"] == "1"
            assert ready_again["STATUS"] == service.status
        [stopping] = await asyncio.to_thread(notify.drain)
        assert stopping["STOPPING"] == "1"


async def test_readyz_reports_the_database_and_the_stop(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = Service(settings, db)
    async with started(service):
        port = service.http.port
        status, body = await asyncio.to_thread(_get, port, "/readyz")
        assert (status, body) == (200, {"ready": True, "checks": {"sftp": True, "database": True}})

        def down() -> None:
            raise StoreError("database error: OperationalError: connection refused")

        monkeypatch.setattr(db, "ping", down)
        status, body = await asyncio.to_thread(_get, port, "/readyz")
        assert (status, body["checks"]) == (503, {"sftp": True, "database": False})
        monkeypatch.undo()

        service._stop.set()  # what SIGTERM sets, before the HTTP server closes
        status, body = await asyncio.to_thread(_get, port, "/readyz")
        assert (status, body["checks"]) == (503, {"sftp": False, "database": True})


async def test_a_taken_sftp_port_fails_the_start_before_ready(
    settings: Settings, db: Database
) -> None:
    with socket.socket() as taken, notify_socket() as notify:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        sftp = dataclasses.replace(settings.sftp, port=taken.getsockname()[1])
        busy = dataclasses.replace(settings, sftp=sftp)
        service = Service(busy, db, notifier=Notifier({"NOTIFY_SOCKET": notify.path}))
        with pytest.raises(SftpError, match="address already in use"):
            await service.serve()
        messages = await asyncio.to_thread(notify.drain)
    assert [m for m in messages if "READY" in m] == []
    assert not service.ready.is_set()


def _with_shutdown_timeout(settings: Settings, seconds: float) -> Settings:
    return dataclasses.replace(
        settings, service=dataclasses.replace(settings.service, shutdown_timeout=seconds)
    )


def _refused(port: int) -> bool:
    """Whether a new connection is turned away. Reset counts as well as refused: one that the
    kernel queued just as the stop closed the listening socket is reset, not accepted."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except (ConnectionRefusedError, ConnectionResetError):
        return True
    return False


@dataclasses.dataclass
class InFlight:
    """A service with a district's upload half-written: `finish` lets the client go on."""

    service: Service
    serving: asyncio.Task[int]
    client: asyncio.Task[None]
    finish: threading.Event


@contextlib.asynccontextmanager
async def upload_in_flight(
    settings: Settings, db: Database, password_hash: str, shutdown_timeout: float
) -> AsyncIterator[InFlight]:
    add_tenant(db, settings, "acme", password_hash)
    service = Service(_with_shutdown_timeout(settings, shutdown_timeout), db)
    opened, finish = threading.Event(), threading.Event()

    def upload() -> None:
        with (
            drop.sftp_session(service.sftp.port, "acme", PASSWORD) as sftp,
            sftp.open("/upload/students.csv", "wb") as handle,
        ):
            handle.write(b"school_id,student_id")
            handle.flush()
            opened.set()
            finish.wait(10)
            handle.write(b",first_name\n")

    async with started(service) as serving:
        client = asyncio.create_task(asyncio.to_thread(upload))
        assert await asyncio.to_thread(opened.wait, 10)
        try:
            yield InFlight(service, serving, client, finish)
        finally:
            finish.set()


async def test_a_stop_refuses_new_logins_and_lets_an_upload_in_flight_finish(
    settings: Settings, db: Database, sftp_password_hash: str
) -> None:
    async with upload_in_flight(settings, db, sftp_password_hash, 10) as flight:
        port = flight.service.sftp.port
        flight.service.stop()
        await asyncio.to_thread(drop.poll, lambda: _refused(port) or None, 10, "refused logins")
        assert not flight.serving.done(), "the upload in flight is waited for"
        flight.finish.set()
        await flight.client
        assert await asyncio.wait_for(flight.serving, 10) == 0
    published = settings.paths.upload_dir("acme")
    assert [p.name for p in published.iterdir()] == ["students.csv"]
    assert (published / "students.csv").read_bytes() == b"school_id,student_id,first_name\n"


async def test_a_stop_aborts_an_upload_that_outlasts_the_timeout_and_leaves_nothing(
    settings: Settings, db: Database, sftp_password_hash: str
) -> None:
    async with upload_in_flight(settings, db, sftp_password_hash, 0.5) as flight:
        flight.service.stop()
        assert await asyncio.wait_for(flight.serving, 10) == 0
        flight.finish.set()
        with pytest.raises((OSError, EOFError, paramiko.SSHException)):
            await flight.client  # the server hung up on the client
    assert list(settings.paths.upload_dir("acme").iterdir()) == []


async def test_imports_are_counted_by_state_whoever_ended_them(settings: Settings) -> None:
    """An operator's `imports reject` or `rosterdrop import` runs in its own process, and
    another daemon may share the database: the metrics a scrape gets count what the
    database holds."""
    db = Database(settings.database_url, lock_dir=settings.paths.locks)
    db.upgrade()
    add_roster_tenant(db, "acme")
    pipeline = pipeline_for(db, settings)
    service = Service(settings, db)
    await service.http.start()

    async def scraped() -> dict[str, float]:
        url = f"http://127.0.0.1:{service.http.port}/metrics"
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read())
        samples = {
            (sample.name, tuple(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(body.decode())
            for sample in family.samples
        }
        found = {
            state: samples[("rosterdrop_imports_total", (("state", state),))]
            for state in ("imported", "rejected", "superseded", "failed")
        }
        return {**found, "paused now": samples[("rosterdrop_imports_paused", ())]}

    try:
        rejected = run_import(pipeline, "acme", FIXTURES / "broken_rows")
        pipeline.reject(rejected.import_id, by="ops")
        run_import(pipeline, "acme", FIXTURES / "broken_rows")
        assert await scraped() == {
            "imported": 0, "rejected": 1, "superseded": 0, "failed": 0, "paused now": 1,
        }  # fmt: skip
        run_import(pipeline, "acme", FIXTURES / "sis_export")  # supersedes the paused one
        assert await scraped() == {
            "imported": 1, "rejected": 1, "superseded": 1, "failed": 0, "paused now": 0,
        }  # fmt: skip
    finally:
        await service.http.stop()
        db.close()


async def test_a_stop_hangs_up_on_an_idle_session_at_once(
    settings: Settings, db: Database, sftp_password_hash: str
) -> None:
    """An SIS that keeps its session open must not make every restart take the whole
    shutdown timeout: with nothing in flight, the stop does not wait for it."""
    add_tenant(db, settings, "acme", sftp_password_hash)
    service = Service(_with_shutdown_timeout(settings, 120), db)
    logged_in, give_up = threading.Event(), threading.Event()

    def idle_session() -> None:
        with drop.sftp_session(service.sftp.port, "acme", PASSWORD) as sftp:
            sftp.listdir("/upload")
            logged_in.set()
            transport = sftp.get_channel().get_transport()
            while transport.is_active() and not give_up.wait(0.05):
                pass  # idle until the server hangs up (or the test gives up on it)

    async with started(service) as serving:
        client = asyncio.create_task(asyncio.to_thread(idle_session))
        assert await asyncio.to_thread(logged_in.wait, 10)
        service.stop()
        # Far less than the 120 s a stop would wait for this client if it waited for idle ones.
        await asyncio.wait([serving], timeout=20)
        give_up.set()  # a failing stop still ends the test rather than hang it
        await client
        assert serving.done(), "the stop waited for an idle session"
        assert serving.result() == 0


async def test_the_upload_watcher_outlives_running_out_of_descriptors(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EMFILE in the spool scan used to end the watcher task, and with it the daemon."""
    monkeypatch.setattr(tasks, "RESOURCE_RETRY_SECONDS", 0.05)
    service = Service(settings, db)
    real_scan, failures = service.spool.scan, [errno.EMFILE, errno.ENFILE]
    scanned_again = asyncio.Event()
    loop = asyncio.get_running_loop()

    def scan() -> Any:
        if failures:
            raise OSError(failures.pop(0), os.strerror(errno.EMFILE))
        loop.call_soon_threadsafe(scanned_again.set)
        return real_scan()

    monkeypatch.setattr(service.spool, "scan", scan)
    async with started(service) as serving:
        await asyncio.wait_for(scanned_again.wait(), 10)
        assert not serving.done()
    assert serving.result() == 0


async def test_an_import_process_that_cannot_start_waits_and_keeps_its_attempts(
    settings: Settings, db: Database, sftp_password_hash: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EMFILE when forking the import process used to end the watcher (and drop the import
    from its queue until a restart)."""
    monkeypatch.setattr(runner_module, "START_RETRY_SECONDS", 0.05, raising=False)
    process_class = runner_module._CONTEXT.Process
    real_start, failures = process_class.start, [errno.EMFILE]

    def start(process: Any) -> None:
        if failures:
            raise OSError(failures.pop(), os.strerror(errno.EMFILE))
        real_start(process)

    monkeypatch.setattr(process_class, "start", start)
    add_tenant(db, settings, "acme", sftp_password_hash)
    service = Service(settings, db)
    async with started(service) as serving:
        files = drop.District("acme", students=10).files()
        await asyncio.to_thread(drop.upload_set, service.sftp.port, "acme", PASSWORD, files)
        [done] = await asyncio.to_thread(
            drop.poll, lambda: drop.ended_imports(db, "acme", 1), 30, "the import"
        )
        assert not serving.done()
    assert failures == []
    assert (done["state"], done["attempts"]) == ("imported", 1)
