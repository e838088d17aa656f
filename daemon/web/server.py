"""The Import Manager's listener: its own host and port, started and stopped by the service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from daemon.config import DataPaths, WebSettings
from daemon.dryrun import DryRunner
from daemon.pipeline import Pipeline
from daemon.store.database import Database
from daemon.web.app import create_app
from daemon.web.auth import Signer, load_or_create_secret
from daemon.web.context import SftpDetails, WebContext
from daemon.web.render import Templates
from daemon.web.throttle import SigninPolicy, SigninThrottle
from daemon.web.uploads import SWEEP_SECONDS, UploadDesk

log = structlog.get_logger(__name__)


class WebServer:
    def __init__(
        self,
        settings: WebSettings,
        data_dir: Path,
        db: Database,
        pipeline: Pipeline,
        *,
        sftp: SftpDetails,
        import_done: Callable[[int], None] = lambda _import_id: None,
        dry_runs: DryRunner | None = None,
        submit_import: Callable[[str, int], None] | None = None,
    ) -> None:
        """`dry_runs` and `submit_import` (the daemon's import worker) make Choose Files."""
        self.settings = settings
        self.data_dir = data_dir
        self.db = db
        self.pipeline = pipeline
        self.sftp = sftp
        self.import_done = import_done
        self.uploads = (
            UploadDesk(DataPaths(data_dir), settings, dry_runs, submit_import)
            if dry_runs is not None and submit_import is not None
            else None
        )
        self._sweeper: asyncio.Task[Any] | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    def context(self) -> WebContext:
        policy = SigninPolicy(
            max_failures=self.settings.signin_max_failures,
            window=self.settings.signin_failure_window,
            lock_seconds=self.settings.signin_lock_seconds,
        )
        return WebContext(
            settings=self.settings,
            db=self.db,
            pipeline=self.pipeline,
            signer=Signer(load_or_create_secret(self.data_dir)),
            throttle=SigninThrottle(policy),
            templates=Templates(),
            sftp=self.sftp,
            import_done=self.import_done,
            uploads=self.uploads,
        )

    async def start(self) -> None:
        self._runner = web.AppRunner(create_app(self.context()), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.settings.port
        if self.uploads is not None:
            self._sweeper = asyncio.create_task(self._sweep(self.uploads), name="web-uploads")

    async def _sweep(self, desk: UploadDesk) -> None:
        """Expired pending uploads go, whether or not anyone looks at them again."""
        while True:
            try:
                removed = await asyncio.to_thread(desk.sweep)
            except OSError as exc:  # a full or read-only disk: the next sweep tries again
                log.warning("web: pending uploads could not be swept", error=str(exc))
            else:
                if removed:
                    log.info("web: expired pending uploads removed", tenants=removed)
            await asyncio.sleep(SWEEP_SECONDS)

    @property
    def address(self) -> str:
        """Where people reach it: public_url, else this listener."""
        host = self.settings.host if self.settings.host not in ("0.0.0.0", "::") else "localhost"  # noqa: S104
        return self.settings.public_url.rstrip("/") or f"http://{host}:{self.port}"

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
