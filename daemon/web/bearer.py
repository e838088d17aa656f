"""`Authorization: Bearer <token>` on /api/v1: the token's user, with that user's permissions,
and no CSRF token needed (a browser never adds this header to a forged request by itself)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from daemon import accounts
from daemon.store.users import Session, User
from daemon.web.context import WebContext, context, set_session

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BEARER = web.RequestKey("bearer", bool)  # set on a request a Bearer token authenticated
REFUSED = "The API token is unknown, revoked or expired, or its user is disabled or removed."


def _token(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def _user(ctx: WebContext, token: str) -> User | None:
    with ctx.db.read() as conn:
        return accounts.api_token_user(conn, token, ctx.clock())


@web.middleware
async def bearer_tokens(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = _token(request) if request.path.startswith("/api/") else None
    if token is None:
        return await handler(request)
    ctx = context(request)
    user = await asyncio.to_thread(_user, ctx, token)  # aiohttp bounds a header to 8 KiB
    if user is None:
        challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        return web.json_response({"error": REFUSED}, status=401, headers=challenge)
    now = ctx.clock()
    # The token stands in for a session (never stored; no CSRF token: BEARER says so).
    set_session(Session(token_hash="", user=user, csrf_token="", created_at=now, last_seen_at=now))
    request[BEARER] = True
    return await handler(request)
