"""The daemon: starts and stops the SFTP server, upload watcher, importers, mailer and HTTP.

Its life is startup() → main_loop() → shutdown(). Background work runs as named tasks; if
one dies, the service stops rather than limp on without it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from daemon import logs, signals, uploadset
from daemon.check.desk import CheckDesk, is_check_path
from daemon.cluster.node import ClusterNode
from daemon.config import Settings
from daemon.dryrun import DryRunner
from daemon.errors import RosterdropError, StoreError
from daemon.http import HttpServer
from daemon.metrics import IMPORT_STATES, record_metrics
from daemon.notify.sender import OutboxSender
from daemon.pipeline import Pipeline
from daemon.rollover import Rollover
from daemon.roster.outcome import ImportState
from daemon.runner import ImportRunner, warm_up
from daemon.sftp import SftpServer, UploadEvent, public_key_line
from daemon.spool import IncompleteSet, ReadySet, Spool
from daemon.store import imports, tenants
from daemon.store.database import Database
from daemon.systemd import Notifier
from daemon.tasks import resilient
from daemon.tenant_accounts import TenantAccounts
from daemon.web import SftpDetails, WebServer

# Background tasks a stop cancels at once; the imports and the mailer wind down instead.
_CANCELLED_AT_STOP = (
    "uploads", "checks", "housekeeping", "watchdog", "cluster", "logins", "windows"
)  # fmt: skip
log = structlog.get_logger(__name__)

HOUSEKEEPING_SECONDS = 3600.0


def import_counts(db: Database) -> dict[ImportState, int]:
    with db.read() as conn:
        return imports.count_by_state(conn)


class Service:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        notifier: Notifier | None = None,
        reload: Callable[[], Settings] | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.notifier = notifier or Notifier()
        self.reload_settings = reload
        self.sender = OutboxSender(db, settings.smtp, settings.paths.outbox)
        self.pipeline = Pipeline(db, settings.paths, settings.smtp, mail_queued=self.sender.wake)
        self.runner = ImportRunner(settings, on_done=self._import_done)
        # On SQLite one node; on PostgreSQL one of several (daemon/cluster/node.py).
        self.cluster = ClusterNode(settings, db)
        self.rollover = Rollover(db, self.pipeline, settings, self._submit)
        paths = settings.paths
        self.sftp = SftpServer(
            settings.sftp,
            paths.host_keys,
            TenantAccounts(db, settings),
            self._on_upload,
            holdings=lambda tenant: (paths.spool / tenant, paths.archive / tenant),
        )
        self.spool = Spool(
            settings.spool,
            settings.paths,
            busy=lambda t: self.sftp.active_uploads(t, "upload"),
            input_format=self._input_format,
        )
        self.checks = CheckDesk(
            db,
            settings,
            uploads_open=self.sftp.active_uploads,
            mail_queued=self.sender.wake,
            claiming=self.cluster.claiming,
            input_format=self._input_format,
        )
        self.http = HttpServer(settings.http, self._readiness, self._refresh_metrics)
        # The Import Manager: a listener of its own, never the ops one's /healthz and /metrics.
        self.web = WebServer(
            settings.web, settings.paths.root, db, self.pipeline,
            sftp=SftpDetails(
                public_host=settings.service.public_host,
                listening_port=self._sftp_port,
                host_keys=paths.host_keys,
                public_key_line=public_key_line,
            ),
            import_done=self._import_done,
            dry_runs=DryRunner(settings), submit_import=self._submit, windows=settings.windows,
        )  # fmt: skip
        self.ready = asyncio.Event()
        self.status = "starting"  # what systemd shows (STATUS=)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self.exit_code = 0

    def _sftp_port(self) -> int:
        """The port districts connect to: the listener's (port 0 picks one), else configured."""
        try:
            return self.sftp.port
        except RuntimeError:  # not listening yet
            return self.settings.sftp.port

    # -- life -------------------------------------------------------------------------------

    async def serve(self, *, once: bool = False) -> int:
        try:
            # Inside the try: a start that fails half-way (the port is taken) still stops
            # the imports that recovery has begun.
            await self.startup(once=once)
            if once:
                await self._drain()
            else:
                await self.main_loop()
        finally:
            await self.shutdown()
        return self.exit_code

    async def startup(self, *, once: bool = False) -> None:
        paths = self.settings.paths
        # A second `serve` on SQLite (a cron job's `serve --once` beside the daemon) would
        # delete the first one's uploads in progress and undo its claims: refused.
        self.cluster.lock_single_node()
        for folder in (paths.tenants, paths.spool, paths.archive, paths.outbox):
            folder.mkdir(parents=True, exist_ok=True)
        warming = None if once else asyncio.ensure_future(asyncio.to_thread(warm_up))
        self.pipeline.node_id = await asyncio.to_thread(self.cluster.register)
        self.checks.checker.node_id = self.pipeline.node_id
        await asyncio.to_thread(self.cluster.remove_abandoned_partials)
        resumable = await asyncio.to_thread(self.cluster.recover, self.pipeline)
        self.checks.resume(await asyncio.to_thread(self.checks.recover))
        if warming is not None:
            await warming
        for tenant, import_id in resumable:
            self.runner.submit(tenant, import_id)
        for name, work in self.cluster.background(
            self.pipeline, self.runner, self.sftp.throttle, self._ports
        ):
            self._spawn(name, resilient(name, work))
        if once:
            return
        await self.sftp.start()
        if self.settings.http.enabled:
            await self.http.start()
        if self.settings.web.enabled:
            await self.web.start()
        self.spool.start_watching(asyncio.get_running_loop())
        self.checks.start_watching(asyncio.get_running_loop())
        self._spawn("uploads", resilient("uploads", self._watch_uploads))
        self._spawn("checks", resilient("checks", self.checks.watch))
        self._spawn("mailer", resilient("mailer", self.sender.run))
        self._spawn("housekeeping", resilient("housekeeping", self._housekeeping))
        self._spawn("windows", self.rollover.run())  # its first look: windows ended while down
        if self.notifier.watchdog_enabled:
            self._spawn("watchdog", self.notifier.keep_alive())
        self.status = f"SFTP on port {self.sftp.port}"
        if self.settings.http.enabled:
            self.status += f", HTTP on {self.settings.http.host}:{self.http.port}"
        if self.settings.web.enabled:
            self.status += f", Import Manager at {self.web.address}"
        self.notifier.ready(self.status)
        self.ready.set()
        log.info(
            "rosterdrop is ready",
            sftp_port=self.sftp.port,
            http_port=self.http.port,
            web_port=self.web.port,
        )

    async def main_loop(self) -> None:
        stop = asyncio.create_task(self._stop.wait(), name="stop")
        done, _ = await asyncio.wait([stop, *self._tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is stop:
                continue
            # Background tasks run until the stop: one that ends by itself, with or without an
            # error, leaves the daemon without it (exit 1: systemd restarts us).
            error = None if task.cancelled() else task.exception()
            log.error("a background task ended; stopping", task=task.get_name(), exc_info=error)
            self.exit_code = 1
        stop.cancel()

    def stop(self) -> None:
        self._stop.set()

    async def shutdown(self) -> None:
        timeout = self.settings.service.shutdown_timeout
        self.notifier.stopping()
        log.info("rosterdrop is stopping", running_imports=self.runner.busy)
        await self.sftp.stop_accepting()
        await self.web.stop()  # no new decisions while the imports wind down
        for task in self._tasks:
            if task.get_name() in _CANCELLED_AT_STOP:
                task.cancel()
        await self.checks.stop()
        self.spool.stop_watching()
        deadline = asyncio.get_running_loop().time() + timeout
        await asyncio.gather(self.sftp.close(timeout), self.runner.stop(timeout))
        # The flush gets what the imports left of the one budget (TimeoutStopSec counts it).
        await self.sender.stop(max(0.0, deadline - asyncio.get_running_loop().time()))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.http.stop()
        await asyncio.to_thread(self.cluster.stop)  # its imports may run elsewhere now
        log.info("rosterdrop stopped")

    async def _drain(self) -> None:
        """`serve --once`: claim every complete, settled set, run every import, send due
        emails. Settling still counts (by the files' times): another program, say OpenSSH's
        sshd, may be writing into the upload folders. Stale incomplete sets are reported as the
        daemon would: a cron-driven setup must warn its districts too."""
        ready, stuck, _ = await asyncio.to_thread(self.spool.scan)
        for ready_set in ready:
            await self._claim(ready_set)
        for incomplete in stuck:
            await self._report_incomplete(incomplete)
        await self.rollover.turn()
        await self.checks.drain()
        await self.runner.idle()
        await self.sender.deliver_due()

    def _spawn(self, name: str, work: Awaitable[Any]) -> None:
        self._tasks.append(asyncio.ensure_future(work))
        self._tasks[-1].set_name(name)

    # -- work -------------------------------------------------------------------------------

    def _on_upload(self, event: UploadEvent) -> None:
        # /check and its results are the check desk's: they never delay an /upload set.
        if is_check_path(event.path):
            self.checks.activity(event.tenant)
        else:
            self.spool.activity(event.tenant)

    async def _watch_uploads(self) -> None:
        while True:
            ready, stuck, next_check = await asyncio.to_thread(self.spool.scan)
            for ready_set in ready:
                await self._claim(ready_set)
            for incomplete in stuck:
                await self._report_incomplete(incomplete)
            await self.spool.wait(next_check)

    async def _claim(self, ready: ReadySet) -> None:
        if self.cluster.enabled and self.runner.pending() >= self.settings.spool.workers:
            return  # every worker busy: the set waits for another node, or a free worker

        def claim() -> tuple[int, bool] | None:
            with self.db.read() as conn:
                tenant = tenants.find(conn, ready.tenant)
            if tenant is None or tenant.disabled:
                return None
            with self.cluster.claiming(tenant.id) as ours:
                found = uploadset.find(ready.folder, tenant.settings.input_format)
                # Another node claims it now, or a file was removed or renamed since the
                # scan (or claimed by another node): decide again at the next scan.
                if not ours or found.missing:
                    return None
                import_id = self.pipeline.receive(tenant, found, source="sftp", move=True)
            return import_id, self.cluster.adopt(import_id, tenant.id)

        try:
            claimed = await asyncio.to_thread(claim)
        except (RosterdropError, OSError) as exc:
            # The database is down, or the folder changed under us: the files wait for the
            # next scan. Either way the watcher carries on for every other tenant.
            log.error("could not claim an upload", tenant=ready.tenant, error=str(exc))
            return
        if claimed is not None and claimed[1]:
            self._submit(ready.tenant, claimed[0])

    def _input_format(self, tenant: str) -> str:
        """A tenant's input format for the watcher (off the event loop); a database away
        means "auto" for this scan: the claim reads the tenant again before it moves a file."""
        try:
            with self.db.read() as conn:
                found = tenants.find(conn, tenant)
        except RosterdropError:
            return uploadset.AUTO
        return found.settings.input_format if found is not None else uploadset.AUTO

    def _submit(self, tenant: str, import_id: int) -> None:
        """An import claimed from a folder (SFTP's, or the web's Choose Files) to the worker."""
        self.runner.submit(tenant, import_id)
        self._show_imports()

    async def _report_incomplete(self, incomplete: IncompleteSet) -> None:
        def report() -> None:
            # Several nodes see the same stuck set: one reports it, once.
            with self.cluster.reporting():
                if self.spool.is_reported(incomplete):
                    return
                self.pipeline.report_incomplete(
                    incomplete.tenant, incomplete.present, incomplete.missing, incomplete.since
                )
                self.spool.reported(incomplete)

        try:
            await asyncio.to_thread(report)
        except (RosterdropError, OSError) as exc:
            log.error(
                "could not report an incomplete upload", tenant=incomplete.tenant, error=str(exc)
            )

    def _import_done(self, import_id: int) -> None:
        self._show_imports()
        self.spool.wake()  # a set left for a free worker may be claimed now
        asyncio.get_running_loop().create_task(self._after_import(import_id))

    def _show_imports(self) -> None:
        """STATUS= for `systemctl status`: how many imports run now."""
        if self.ready.is_set() and not self._stop.is_set():
            running = self.runner.busy
            self.notifier.status(f"{self.status}; imports running: {running}")

    async def _after_import(self, import_id: int) -> None:
        with contextlib.suppress(RosterdropError):
            record_metrics(await asyncio.to_thread(self.pipeline.report, import_id))
        self.sender.wake()

    async def _housekeeping(self) -> None:
        while True:
            try:
                await self._expire()
            except StoreError as exc:
                # The database is down, lost or replaced: /readyz says so; expiring can wait
                # for the next round, it must not stop the daemon.
                if not exc.transient:
                    raise
                log.warning("housekeeping put off: the database failed", error=str(exc))
            await asyncio.sleep(HOUSEKEEPING_SECONDS)

    async def _expire(self) -> None:
        retention = self.settings.spool.retention_days
        removed = await asyncio.to_thread(self.pipeline.expire, retention)
        if removed:
            log.info("expired archived uploads removed", imports=removed)
        checks = await asyncio.to_thread(self.checks.checker.expire, retention)
        if checks:
            log.info("expired archived checks removed", checks=checks)

    def _ports(self) -> tuple[int | None, int | None]:
        """The node's SFTP and HTTP ports, for `cluster status` (None until listening)."""
        if not self.ready.is_set():
            return None, None
        return self.sftp.port, self.http.port or None

    async def _refresh_metrics(self) -> None:
        """Before a scrape: the figures only the database knows."""
        try:
            IMPORT_STATES.counts = await asyncio.to_thread(import_counts, self.db)
        except RosterdropError as exc:  # the scrape shows the last figures; /readyz says why
            log.warning("could not read the imports for the metrics", error=str(exc))

    async def _readiness(self) -> dict[str, bool]:
        try:
            await asyncio.to_thread(self.db.ping)
            database = True
        except RosterdropError:
            database = False
        ready = self.ready.is_set() and not self._stop.is_set()
        checks = {"sftp": ready, "database": database}
        if self.cluster.enabled:  # a node that lost its lease is not one to send districts to
            checks["cluster_lease"] = self.cluster.lease_held
        return checks

    def reload(self) -> None:
        """SIGHUP: re-read the settings that can change while running (the log level)."""
        if self.reload_settings is None:
            return
        if self.ready.is_set():  # READY=1 ends the reload: never before the start's own
            self.notifier.reloading()
        try:
            fresh = self.reload_settings()
        except RosterdropError as exc:
            log.error("reload failed; keeping the running settings", error=str(exc))
        else:
            logs.set_level(fresh.log.level)
            self.runner.set_log_level(fresh.log.level)
            log.info("settings reloaded", log_level=fresh.log.level)
        if self.ready.is_set():
            self.notifier.ready(self.status)


def run(
    settings: Settings,
    db: Database,
    *,
    once: bool = False,
    reload: Callable[[], Settings] | None = None,
) -> int:
    """The sync shell around the async service; returns the process exit code."""

    async def main() -> int:
        service = Service(settings, db, reload=reload)
        with signals.handled(service.stop, service.reload):
            return await service.serve(once=once)

    return asyncio.run(main())
