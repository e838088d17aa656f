"""The Import Manager's listener: its own host and port (HTTPS with [web] tls_cert/tls_key),
started and stopped by `rosterdrop serve` or `rosterdrop web`."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from daemon.config import DataPaths, WebSettings, WindowSettings
from daemon.dryrun import DryRunner
from daemon.errors import ConfigError
from daemon.pipeline import Pipeline
from daemon.store.database import Database
from daemon.web.app import create_app
from daemon.web.auth import Signer, load_or_create_secret
from daemon.web.context import SftpDetails, WebContext
from daemon.web.proxies import TrustedProxies
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
        windows: WindowSettings | None = None,
    ) -> None:
        """`dry_runs` and `submit_import` (the daemon's import worker) make Choose Files."""
        self.settings = settings
        self.data_dir = data_dir
        self.db = db
        self.pipeline = pipeline
        self.sftp = sftp
        self.import_done = import_done
        self.windows = windows or WindowSettings()  # the Setup page's pause windows' days
        self.uploads = (
            UploadDesk(DataPaths(data_dir), settings, dry_runs, submit_import)
            if dry_runs is not None and submit_import is not None
            else None
        )
        self._sweeper: asyncio.Task[Any] | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        # Read now, not at start(): a bad certificate stops the start before anything listens.
        self.tls = tls_context(settings) if settings.enabled else None

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
            proxies=TrustedProxies(self.settings.proxy_networks()),
            windows=self.windows,
        )

    async def start(self) -> None:
        self._runner = web.AppRunner(create_app(self.context()), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, self.settings.host, self.settings.port, ssl_context=self.tls
        )
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
        scheme = "https" if self.tls else "http"
        return self.settings.public_url.rstrip("/") or f"{scheme}://{host}:{self.port}"

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _refuse_passphrase() -> bytes:
    # Never OpenSSL's prompt on a terminal (a daemon has none): an encrypted key fails.
    return b""


def tls_context(settings: WebSettings) -> ssl.SSLContext | None:
    """The server side of HTTPS from [web] tls_cert and tls_key (None: plain HTTP); a
    ConfigError naming the setting and the file when one is missing, unreadable or wrong."""
    if not settings.tls:
        return None
    cert, key = Path(settings.tls_cert), Path(settings.tls_key)
    for name, path in (("tls_cert", cert), ("tls_key", key)):
        try:
            path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"setting web.{name}: cannot read {path}: {exc.strerror}") from None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        # Read as trust anchors first: a file with no certificate in it is named as such.
        ssl.create_default_context(cafile=str(cert))
    except ssl.SSLError:
        raise ConfigError(f"setting web.tls_cert: {cert} holds no PEM certificate") from None
    try:
        context.load_cert_chain(cert, key, password=_refuse_passphrase)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise ConfigError(
                f"setting web.tls_key: {key} is not the private key of the certificate in {cert}"
            ) from None
        raise ConfigError(
            f"setting web.tls_key: {key} holds no unencrypted PEM private key"
        ) from None
    return context
