"""The /check folders' watcher: a settled, complete set in a tenant's /check becomes a check.

Its own Spool (the same settle rule as /upload's) and its own task, so nothing in /check
can hold up, or be held up by, the tenant's /upload: an upload in progress in one folder is
no reason to wait in the other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import structlog

from daemon import uploadset
from daemon.check.checker import Checker
from daemon.config import Settings
from daemon.dryrun import DryRunner
from daemon.errors import RosterdropError
from daemon.spool import Spool
from daemon.store import tenants
from daemon.store.database import Database

log = structlog.get_logger(__name__)

CHECK_FOLDER = "check"
RESULTS_FOLDER = "results"


def is_check_path(path: Path) -> bool:
    """Whether an SFTP event's path is in a tenant's /check (or its results)."""
    parent = path.parent
    if parent.name == RESULTS_FOLDER:
        parent = parent.parent
    return parent.name == CHECK_FOLDER


class CheckDesk:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        uploads_open: Callable[[str, str], int],
        mail_queued: Callable[[], None],
        claiming: Callable[[int], AbstractContextManager[bool]] = lambda _: nullcontext(True),
        input_format: Callable[[str], str] = lambda _: uploadset.AUTO,
    ) -> None:
        self.db = db
        self.claiming = claiming  # a cluster's claim of the tenant's folders (daemon.cluster)
        self.checker = Checker(db, settings, DryRunner(settings), mail_queued=mail_queued)
        self.spool = Spool(
            settings.spool,
            settings.paths,
            folder=CHECK_FOLDER,
            input_format=input_format,  # as the claim reads it: a pinned format's set only
            busy=lambda tenant: (
                uploads_open(tenant, CHECK_FOLDER) + self.checker.unfinished(tenant)
            ),
        )
        self.retry_seconds = settings.spool.no_space_retry_seconds
        self._running: set[asyncio.Task[None]] = set()

    def activity(self, tenant: str) -> None:
        self.spool.activity(tenant)

    def start_watching(self, loop: asyncio.AbstractEventLoop) -> None:
        """File-system events too: another program (sshd) may write into /check."""
        self.spool.start_watching(loop)

    def recover(self) -> list[int]:
        """Blocking, before SFTP listens: the checks to run again."""
        return self.checker.recover()

    def resume(self, check_ids: list[int]) -> None:
        for check_id in check_ids:
            self._submit(check_id)

    async def watch(self) -> None:
        """Claim settled sets for ever (a named task of the service)."""
        while True:
            await self.spool.wait(await self.scan_once())

    async def scan_once(self) -> float:
        """Claim the ready sets; returns the seconds until the next scan is due. A set stuck
        incomplete in /check emails nobody: a person testing an export is there to see it."""
        if self.checker.node_id is not None:  # a dead node's checks are this one's to finish
            try:
                self.resume(await asyncio.to_thread(self.checker.recover))
            except RosterdropError as exc:  # the database is away: the next scan tries again
                log.error("could not take over dead nodes' checks", error=str(exc))
        ready, _, next_check = await asyncio.to_thread(self.spool.scan)
        for ready_set in ready:
            check_id = await asyncio.to_thread(self._claim, ready_set.tenant)
            if check_id is not None:
                self._submit(check_id)
        return next_check

    async def drain(self) -> None:
        """`serve --once`: claim what is ready, and wait for every check to end."""
        await self.scan_once()
        await self.idle()

    async def idle(self) -> None:
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def stop(self) -> None:
        """A check cut short runs again after the restart: its files are still in /check."""
        self.spool.stop_watching()
        for task in self._running:
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)

    def _claim(self, tenant_name: str) -> int | None:
        try:
            with self.db.read() as conn:
                tenant = tenants.find(conn, tenant_name)
            if tenant is None or tenant.disabled:
                return None
            with self.claiming(tenant.id) as ours:
                found = uploadset.find(
                    self.checker.paths.check_dir(tenant_name), tenant.settings.input_format
                )
                # Another node claims it now, or a file went since the scan: decide again.
                if not ours or found.missing or self.checker.unfinished(tenant_name):
                    return None
                return self.checker.receive(tenant, found)
        except (RosterdropError, OSError) as exc:
            log.error("could not claim a check", tenant=tenant_name, error=str(exc))
            return None

    def _submit(self, check_id: int) -> None:
        task = asyncio.get_running_loop().create_task(self._run(check_id))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, check_id: int) -> None:
        while True:
            try:
                await self.checker.run(check_id)
                return
            except (RosterdropError, OSError) as exc:
                # The database or the disk is away: the check waits and tries again.
                log.error("check interrupted; retrying", check_id=check_id, error=str(exc))
                await asyncio.sleep(self.retry_seconds)
