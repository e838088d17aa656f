"""The Import Manager's listener: its own host and port, started and stopped by the service."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from daemon.config import WebSettings
from daemon.pipeline import Pipeline
from daemon.store.database import Database
from daemon.web.app import create_app
from daemon.web.auth import Signer, load_or_create_secret
from daemon.web.context import SftpDetails, WebContext
from daemon.web.render import Templates
from daemon.web.throttle import SigninPolicy, SigninThrottle


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
    ) -> None:
        self.settings = settings
        self.data_dir = data_dir
        self.db = db
        self.pipeline = pipeline
        self.sftp = sftp
        self.import_done = import_done
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
        )

    async def start(self) -> None:
        self._runner = web.AppRunner(create_app(self.context()), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.settings.port

    @property
    def address(self) -> str:
        """Where people reach it: public_url, else this listener."""
        host = self.settings.host if self.settings.host not in ("0.0.0.0", "::") else "localhost"  # noqa: S104
        return self.settings.public_url.rstrip("/") or f"http://{host}:{self.port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
