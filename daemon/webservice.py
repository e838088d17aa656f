"""`rosterdrop web`: the Import Manager alone, for a host beside the one that runs `serve`.

No SFTP, upload watcher or mailer here: `rosterdrop serve` does those. Files uploaded with
Choose Files are imported by import workers of this process, as `serve` imports an SFTP
upload; a decision made here runs in this process, as `rosterdrop imports approve` does in an
operator's shell. The pipeline holds the tenant's lock (a PostgreSQL advisory lock, which
holds across hosts; on SQLite an flock beside the database, which holds on one machine only)
for the whole re-check and apply, so nothing here runs beside the daemon's import of the same
tenant; the emails queued here are sent by the daemon's mailer, which reads the outbox table.
The imports' files are in the daemon's data directory: this process must see it at the same
path.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

import click
import structlog

from daemon import logs, signals
from daemon.app import App
from daemon.config import Settings, load_settings, unknown_env
from daemon.errors import ConfigError, Conflict, RosterdropError
from daemon.pipeline import Pipeline
from daemon.roster.outcome import ImportReport
from daemon.store import imports
from daemon.store.database import Database
from daemon.systemd import Notifier

log = structlog.get_logger(__name__)


class SharedPipeline(Pipeline):
    """The pipeline of a process that shares the daemon's data directory: a decision on an
    import whose files are not in this process's data directory is refused before anything
    changes (else an approval would fail the import for "missing" files that are only on the
    daemon's disk, or archive them where the daemon never looks)."""

    def approve(self, import_id: int, by: str) -> ImportReport:
        self._files_here(import_id)
        return super().approve(import_id, by)

    def reject(self, import_id: int, by: str) -> ImportReport:
        self._files_here(import_id)
        return super().reject(import_id, by)

    def _files_here(self, import_id: int) -> None:
        with self.db.read() as conn:
            record = imports.get(conn, import_id)
        if not record.files_dir:
            return  # expired: the pipeline says so itself
        folder, root = Path(record.files_dir), self.paths.root
        # Under this data directory, not merely readable: the decision archives the files
        # into it, where the daemon (and its retention) must find them.
        if not (folder.is_dir() and folder.resolve().is_relative_to(root.resolve())):
            raise Conflict(
                f"Import #{import_id}'s files ({folder}) are not in this web server's data"
                f" directory ({root}), so it cannot be decided here: `rosterdrop web` needs the"
                " daemon's data directory, at the same path (a shared mount). Nothing was"
                " changed."
            )


class WebService:
    """startup() → main_loop() → shutdown(), as `serve`, for the web listener alone."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        notifier: Notifier | None = None,
        reload: Callable[[], Settings] | None = None,
    ) -> None:
        self.settings = settings
        self.notifier = notifier or Notifier()
        self.reload_settings = reload
        # Here, not at the top: every other command imports this module (cli.py), and
        # needs no aiohttp.
        from daemon.dryrun import DryRunner
        from daemon.runner import ImportRunner
        from daemon.sftp import public_key_line
        from daemon.web import SftpDetails, WebServer

        pipeline = SharedPipeline(db, settings.paths, settings.smtp)
        self.runner = ImportRunner(settings)
        self.web = WebServer(
            settings.web, settings.paths.root, db, pipeline,
            sftp=SftpDetails(
                public_host=settings.service.public_host,
                listening_port=lambda: settings.sftp.port,  # the daemon's, as configured
                host_keys=settings.paths.host_keys,
                public_key_line=public_key_line,
            ),
            dry_runs=DryRunner(settings), submit_import=self.runner.submit,
            windows=settings.windows,
        )  # fmt: skip
        self._stop = asyncio.Event()
        self.status = "starting"  # what systemd shows (STATUS=)

    async def serve(self) -> int:
        try:
            await self.startup()
            await self.main_loop()
        finally:
            await self.shutdown()
        return 0

    async def startup(self) -> None:
        from daemon.runner import warm_up

        # The fork server of Choose Files' dry runs and imports, started before any request.
        await asyncio.to_thread(warm_up)
        await self.web.start()
        self.status = f"Import Manager at {self.web.address}"
        self.notifier.ready(self.status)
        log.info("rosterdrop web is ready", web_port=self.web.port, address=self.web.address)

    async def main_loop(self) -> None:
        if not self.notifier.watchdog_enabled:
            await self._stop.wait()
            return
        watchdog = asyncio.create_task(self.notifier.keep_alive(), name="watchdog")
        await self._stop.wait()
        watchdog.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watchdog

    def stop(self) -> None:
        self._stop.set()

    async def shutdown(self) -> None:
        self.notifier.stopping()
        # Requests in flight (an approval applying) get aiohttp's grace; one cut short rolls
        # back, and the daemon resumes an approved import at its next start.
        await self.web.stop()
        # A Choose Files import still running gets the same grace as in `serve`; one cut
        # short is resumable and runs again at the daemon's next start.
        await self.runner.stop(self.settings.service.shutdown_timeout)
        log.info("rosterdrop web stopped")

    def reload(self) -> None:
        """SIGHUP: the log level, as `serve` re-reads it."""
        if self.reload_settings is None:
            return
        self.notifier.reloading()
        try:
            fresh = self.reload_settings()
        except RosterdropError as exc:
            log.error("reload failed; keeping the running settings", error=str(exc))
        else:
            logs.set_level(fresh.log.level)
            self.runner.set_log_level(fresh.log.level)
            log.info("settings reloaded", log_level=fresh.log.level)
        self.notifier.ready(self.status)


def run(settings: Settings, db: Database, *, reload: Callable[[], Settings] | None = None) -> int:
    """The sync shell around the web service; returns the process exit code."""

    async def main() -> int:
        service = WebService(settings, db, reload=reload)
        with signals.handled(service.stop, service.reload):
            return await service.serve()

    return asyncio.run(main())


@click.command("web")
@click.pass_obj
def web_command(app: App) -> None:
    """Run only the Import Manager (the [web] listener), beside a `rosterdrop serve` that
    shares its database and data directory: on a second host, or on its own port."""
    if not app.settings.web.enabled:
        raise ConfigError("setting web.enabled is false: `rosterdrop web` has nothing to run")
    for name in unknown_env():
        log.warning("not a setting; ignored", variable=name)
    config_file = click.get_current_context().find_root().params.get("config_file")
    raise SystemExit(run(app.settings, app.db, reload=lambda: load_settings(config_file)))
