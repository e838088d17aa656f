"""Running imports in worker processes: several tenants at once, one import per tenant, in order.

Each import runs in a process of its own: its CPU-heavy validation never stalls the SFTP
server's event loop, its memory goes back to the system when it ends, and a crash or a kill
leaves the import resumable (the database rolls the unfinished transaction back).

The processes are forked from a fork server that imported the pipeline once: a freshly
spawned interpreter spends about a second importing it, for every import.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import multiprocessing
import multiprocessing.forkserver
import shutil
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from pathlib import Path

import structlog

from daemon.config import Settings
from daemon.config.settings import LogLevel
from daemon.diskspace import EXIT_NO_SPACE
from daemon.metrics import IMPORT_NO_SPACE, IMPORTS_WAITING_FOR_SPACE
from daemon.store.database import sqlite_file
from daemon.worker import run_import

log = structlog.get_logger(__name__)

# A process that dies (killed for its memory, a crash, the database gone) leaves its import
# resumable: it runs again after a pause that grows, and before anything newer of its tenant,
# whose imports must apply in upload order. The pipeline counts the attempts and fails an
# import that keeps dying; only an unreachable database makes the retries go on.
RETRY_FIRST_SECONDS = 2.0
RETRY_MAX_SECONDS = 300.0
# A process that could not even start (EMFILE, EAGAIN): its import waits this long, and
# keeps its place in its tenant's queue.
START_RETRY_SECONDS = 1.0

_CONTEXT = multiprocessing.get_context("forkserver")
# What an import needs, made ready once in the fork server rather than in every import process.
# The columnar engine and the store's table loader bring polars and pyarrow into the fork
# server (and so every import process) without the daemon itself loading them; they are
# imported there, never run: their thread pools start on first use, in the forked process
# (a pool started before the fork would deadlock the children; importing starts only their
# allocators' housekeeping threads, which jemalloc makes fork-safe). PostgreSQL's driver too: an
# import process imported it on connecting, 55 ms of an identical upload's 0.2 s.
PRELOAD = [
    "daemon.worker",
    "daemon.clever.columns.engine",
    "daemon.store.staging_load",
    "psycopg",
    "sqlalchemy.dialects.postgresql.psycopg",
]


def warm_up() -> None:
    """Start the fork server and let it import the pipeline (blocking: run it in a thread).
    Without it the first import starts the server, blocking the event loop meanwhile."""
    _CONTEXT.set_forkserver_preload(PRELOAD)
    multiprocessing.forkserver.ensure_running()


@dataclass
class ImportRunner:
    """Queues imports per tenant and runs up to `workers` of them at a time."""

    settings: Settings
    on_done: Callable[[int], None] = lambda import_id: None
    _queues: dict[str, deque[int]] = field(default_factory=dict)
    _running: dict[str, tuple[int, BaseProcess]] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _failures: dict[str, int] = field(default_factory=dict)  # abnormal ends in a row
    _held_until: dict[str, float] = field(default_factory=dict)  # loop time of the retry
    _no_space: set[int] = field(default_factory=set)  # imports waiting for disk space
    # The SQLite file the daemon opened: an import process must find that one, not another.
    _db_identity: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        file = sqlite_file(self.settings.database_url)
        with contextlib.suppress(OSError):
            if file is not None:
                stat = file.stat()
                self._db_identity = (stat.st_dev, stat.st_ino)

    _closing: bool = False

    def set_log_level(self, level: LogLevel) -> None:
        """Import processes started from now on log at `level` (a SIGHUP's new setting)."""
        log_settings = dataclasses.replace(self.settings.log, level=level)
        self.settings = dataclasses.replace(self.settings, log=log_settings)

    def submit(self, tenant: str, import_id: int) -> None:
        queue = self._queues.setdefault(tenant, deque())
        running = self._running.get(tenant)
        if import_id in queue or (running and running[0] == import_id):
            return
        queue.append(import_id)
        self._start_what_fits()

    def known(self) -> set[int]:
        """The imports queued or running here (a cluster's heartbeat submits only others)."""
        running = {import_id for import_id, _ in self._running.values()}
        return running.union(*self._queues.values())

    @property
    def busy(self) -> int:
        return len(self._running)

    def pending(self) -> int:
        return sum(len(q) for q in self._queues.values()) + len(self._running)

    def _start_what_fits(self) -> None:
        if self._closing:
            return
        now = asyncio.get_running_loop().time()
        for tenant, queue in self._queues.items():
            if len(self._running) >= max(1, self.settings.spool.workers):
                return
            if queue and tenant not in self._running and self._held_until.get(tenant, 0) <= now:
                import_id = queue.popleft()
                process = _CONTEXT.Process(
                    target=run_import,
                    args=(
                        self.settings,
                        import_id,
                        import_id in self._no_space,
                        self._db_identity,
                    ),
                    name=f"rosterdrop-import-{import_id}",
                )
                try:
                    process.start()
                except OSError as exc:  # out of descriptors or processes: no attempt spent
                    self._start_later(tenant, import_id, exc)
                    continue
                self._running[tenant] = (import_id, process)
                task = asyncio.get_running_loop().create_task(
                    self._watch(tenant, import_id, process)
                )
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                log.info("import started", tenant=tenant, import_id=import_id, pid=process.pid)

    async def _watch(self, tenant: str, import_id: int, process: BaseProcess) -> None:
        loop = asyncio.get_running_loop()
        ended = asyncio.Event()
        loop.add_reader(process.sentinel, ended.set)
        try:
            await ended.wait()
        finally:
            loop.remove_reader(process.sentinel)
        process.join()
        del self._running[tenant]
        if process.exitcode == EXIT_NO_SPACE and not self._closing:
            self._wait_for_space(tenant, import_id)
        else:
            if import_id in self._no_space:
                self._no_space.discard(import_id)
                IMPORTS_WAITING_FOR_SPACE.dec()
            if process.exitcode == 0:
                self._failures.pop(tenant, None)
            elif not self._closing:
                self._retry(tenant, import_id, process.exitcode)
        self._changed.set()
        self.on_done(import_id)
        self._start_what_fits()

    def _start_later(self, tenant: str, import_id: int, exc: OSError) -> None:
        loop = asyncio.get_running_loop()
        self._queues[tenant].appendleft(import_id)
        self._held_until[tenant] = loop.time() + START_RETRY_SECONDS
        loop.call_later(START_RETRY_SECONDS, self._start_what_fits)
        log.error(
            "could not start an import process; trying again",
            tenant=tenant,
            import_id=import_id,
            error=str(exc),
            in_seconds=START_RETRY_SECONDS,
        )

    def _retry(self, tenant: str, import_id: int, exitcode: int | None) -> None:
        failures = self._failures[tenant] = self._failures.get(tenant, 0) + 1
        delay = min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 4 ** (failures - 1))
        loop = asyncio.get_running_loop()
        self._queues.setdefault(tenant, deque()).appendleft(import_id)
        self._held_until[tenant] = loop.time() + delay
        loop.call_later(delay, self._start_what_fits)
        log.error(
            "import process ended abnormally; it runs again",
            tenant=tenant,
            import_id=import_id,
            exitcode=exitcode,
            in_seconds=delay,
        )

    def _wait_for_space(self, tenant: str, import_id: int) -> None:
        """A full disk is the machine's condition, not the import's: try again every
        no_space_retry_seconds for as long as it lasts, without counting attempts."""
        if import_id not in self._no_space:
            IMPORTS_WAITING_FOR_SPACE.inc()
        self._no_space.add(import_id)
        IMPORT_NO_SPACE.inc()
        delay = self.settings.spool.no_space_retry_seconds
        loop = asyncio.get_running_loop()
        self._queues.setdefault(tenant, deque()).appendleft(import_id)
        self._held_until[tenant] = loop.time() + delay
        loop.call_later(delay, self._start_what_fits)
        log.error(
            "import waits for disk space",
            tenant=tenant,
            import_id=import_id,
            data_dir_free_bytes=_free_bytes(self.settings.paths.root),
            in_seconds=delay,
        )

    async def idle(self) -> None:
        """Wait until nothing is queued or running (for `serve --once` and the tests)."""
        while self.pending():
            self._changed.clear()
            await self._changed.wait()

    async def stop(self, grace: float) -> None:
        """Let running imports finish within `grace` seconds; then stop them (they resume later)."""
        self._closing = True
        self._queues.clear()
        if self._running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.idle(), grace)
        for tenant, (import_id, process) in list(self._running.items()):
            log.warning(
                "stopping an unfinished import; it resumes at the next start",
                tenant=tenant,
                import_id=import_id,
            )
            process.terminate()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)
        for _, process in list(self._running.values()):
            process.kill()


def _free_bytes(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None
