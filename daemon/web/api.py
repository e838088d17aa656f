"""/api/v1: the imports as JSON, with the pages' permissions (session cookie + CSRF header,
or an `Authorization: Bearer` token: daemon/web/bearer.py).
An import is the shape of `rosterdrop imports show --json` (daemon/console.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from daemon import console, reports
from daemon.store.users import User
from daemon.web.context import context, session
from daemon.web.views import data, decisions
from daemon.web.views.pages import int_param, state_param

API_PAGE_SIZE = 100  # imports per page of GET /api/v1/imports (keyset: ?before=ID)


def api_user(request: web.Request) -> User:
    current = session(request)
    if current is None:
        raise web.HTTPUnauthorized(
            reason="Sign in first, or send an API token (Authorization: Bearer).",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return current.user


async def list_imports(request: web.Request) -> web.Response:
    user = api_user(request)
    ctx = context(request)
    page = await asyncio.to_thread(
        data.imports_page, ctx.db, user, tenant=request.query.get("tenant") or None,
        state=state_param(request.query) or None, before=int_param(request.query, "before"),
        limit=API_PAGE_SIZE,
    )  # fmt: skip
    return web.json_response(
        {
            "imports": console.imports_json([*page.paused, *page.records]),
            "next_before": page.next_before,
        }
    )


def _import_json(ctx_db: Any, user: User, import_id: int) -> dict[str, Any]:
    record = data.visible_import(ctx_db, user, import_id)
    with ctx_db.read() as conn:
        return console.import_json(reports.report_of(conn, record))


async def show_import(request: web.Request) -> web.Response:
    user = api_user(request)
    ctx = context(request)
    import_id = int(request.match_info["id"])
    return web.json_response(await asyncio.to_thread(_import_json, ctx.db, user, import_id))


async def decide(request: web.Request) -> web.Response:
    user = api_user(request)
    report = await decisions.decide(
        request, user, int(request.match_info["id"]), request.match_info["action"]
    )
    return web.json_response(console.import_json(report))
