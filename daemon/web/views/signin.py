"""Signing in and out: the form, the throttle, the session row and its cookie."""

from __future__ import annotations

import asyncio
import math
from datetime import timedelta

from aiohttp import web

from daemon.passwords import dummy_hash, verify_password
from daemon.store import users
from daemon.web import auth
from daemon.web.context import address, context, secure_cookies, session

USERNAME_MAX_CHARS = 64
PASSWORD_MAX_CHARS = 1024  # argon2 hashes any length: do not let a request make it hash 1 MB


def _safe_next(target: str | None) -> str:
    """Only a path of this site: never an open redirect to another one."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/imports"


async def signin_form(
    request: web.Request, *, error: str = "", status: int = 200, username: str = ""
) -> web.Response:
    ctx = context(request)
    if session(request) is not None and not error:
        raise web.HTTPSeeOther(_safe_next(request.query.get("next")))
    token = request.cookies.get(auth.SIGNIN_COOKIE) or auth.new_token()
    response = ctx.templates.page(
        "signin.html.j2",
        status=status,
        title="Sign in",
        user=None,
        csrf_token=token,
        error=error,
        next=_safe_next(request.query.get("next")),
        username=username,
    )
    response.set_cookie(
        auth.SIGNIN_COOKIE,
        token,
        httponly=True,
        samesite="Lax",
        secure=secure_cookies(request),
        path="/signin",
    )
    return response


async def signin(request: web.Request) -> web.Response:
    ctx = context(request)
    form = await request.post()
    name = str(form.get("username", ""))[:USERNAME_MAX_CHARS].strip()
    password = str(form.get("password", ""))[:PASSWORD_MAX_CHARS]
    peer = address(request)
    wait = ctx.throttle.wait(peer, name)
    if wait > 0:
        minutes = max(1, math.ceil(wait / 60))
        return await signin_form(
            request,
            error=f"Too many failed sign-ins. Try again in {minutes} minute(s).",
            status=429,
            username=name,
        )

    def check() -> users.User | None:
        with ctx.db.read() as conn:
            user = users.find(conn, name) if name else None
        stored = user.password_hash if user and user.password_hash else None
        # An unknown user costs what a known one does: no timing tells which names exist.
        matches = verify_password(stored or dummy_hash(), password)
        if user is None or stored is None or not matches or user.disabled:
            return None
        return user

    user = await asyncio.to_thread(check)
    if user is None:
        ctx.throttle.failed(peer, name)
        return await signin_form(
            request, error="Wrong username or password.", status=401, username=name
        )
    ctx.throttle.succeeded(peer, name)
    token, csrf = auth.new_token(), auth.new_token()
    now = ctx.clock()

    def start() -> None:
        with ctx.db.write() as conn:
            users.start_session(
                conn, user.id, token_hash=auth.token_hash(token), csrf_token=csrf,
                address=peer, now=now,
            )  # fmt: skip
            users.expire_sessions(
                conn,
                idle_before=now - timedelta(minutes=ctx.settings.session_idle_minutes),
                started_before=now - timedelta(hours=ctx.settings.session_max_hours),
            )

    await asyncio.to_thread(start)
    response = web.HTTPSeeOther(_safe_next(str(form.get("next", ""))))
    set_session_cookie(response, ctx.signer.sign(token), secure=secure_cookies(request))
    response.del_cookie(auth.SIGNIN_COOKIE, path="/signin")
    raise response


def set_session_cookie(response: web.StreamResponse, value: str, *, secure: bool) -> None:
    # No max-age: the cookie ends with the browser; the server ends the session by its timeouts.
    response.set_cookie(
        auth.SESSION_COOKIE, value, httponly=True, samesite="Lax", secure=secure, path="/"
    )


async def signout(request: web.Request) -> web.Response:
    ctx = context(request)
    current = session(request)
    if current is not None:

        def end() -> None:
            with ctx.db.write() as conn:
                users.end_session(conn, current.token_hash)

        await asyncio.to_thread(end)
    response = web.HTTPSeeOther("/signin")
    response.del_cookie(auth.SESSION_COOKIE, path="/")
    raise response
