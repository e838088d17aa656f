"""Health and metrics over HTTP: /healthz (alive), /readyz (can take uploads), /metrics."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from daemon.config import HttpSettings
from daemon.metrics import REGISTRY

Readiness = Callable[[], Awaitable[dict[str, bool]]]
Refresh = Callable[[], Awaitable[None]]


class HttpServer:
    def __init__(self, settings: HttpSettings, readiness: Readiness, refresh: Refresh) -> None:
        self.settings = settings
        self.readiness = readiness
        self.refresh = refresh  # brings the metrics only the database knows up to date
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.settings.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        # Answering at all proves the event loop runs.
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        checks = await self.readiness()
        ready = all(checks.values())
        body = json.dumps({"ready": ready, "checks": checks}) + "\n"
        return web.Response(
            text=body, status=200 if ready else 503, content_type="application/json"
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        await self.refresh()
        response = web.Response(body=generate_latest(REGISTRY))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response
