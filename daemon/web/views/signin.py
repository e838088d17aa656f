"""Signing in and out: the form, the throttle, the authentication code of a user with TOTP,
the session row and its cookie."""

from __future__ import annotations

import asyncio
import math
from datetime import timedelta
from typing import Any

import yarl
from aiohttp import web

from daemon import accounts
from daemon.passwords import dummy_hash, verify_password
from daemon.store import users
from daemon.web import auth
from daemon.web.context import WebContext, address, context, secure_cookies, session

USERNAME_MAX_CHARS = 64
PASSWORD_MAX_CHARS = 1024  # argon2 hashes any length: do not let a request make it hash 1 MB
CODE_MAX_CHARS = 16  # six digits, perhaps with spaces
# What the sign-in page says after another page sent a person there (?done=…).
NOTICES = {"password": "Your password is set: sign in with it."}


def _safe_next(target: str | None) -> str:
    """Only a path of this site: never an open redirect to another one. A browser drops tabs
    and line breaks from a URL (slash, tab, slash is "//", another site), so any control
    character refuses the target, and what is left must parse as a bare path."""
    if not target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target) or "\\" in target:
        return "/imports"
    try:
        url = yarl.URL(target)
    except ValueError:
        return "/imports"
    if url.scheme or url.host is not None or target.startswith("//") or target[:1] != "/":
        return "/imports"
    return target


def form_token(request: web.Request) -> str:
    """The double-submit token of a signed-out form: the browser's cookie, else a new one."""
    return request.cookies.get(auth.SIGNIN_COOKIE) or auth.new_token()


def signed_out_page(
    request: web.Request, template: str, *, path: str, status: int = 200, **values: Any
) -> web.Response:
    """A page whose form a signed-out person posts, with its token in a cookie of its path."""
    ctx = context(request)
    token = form_token(request)
    response = ctx.templates.page(template, status=status, user=None, csrf_token=token, **values)
    response.set_cookie(
        auth.SIGNIN_COOKIE, token, httponly=True, samesite="Lax",
        secure=secure_cookies(request), path=path,
    )  # fmt: skip
    return response


async def signin_form(
    request: web.Request, *, error: str = "", status: int = 200, username: str = ""
) -> web.Response:
    if session(request) is not None and not error:
        raise web.HTTPSeeOther(_safe_next(request.query.get("next")))
    return signed_out_page(
        request, "signin.html.j2", path="/signin", status=status, title="Sign in", error=error,
        notice=NOTICES.get(request.query.get("done", ""), ""),
        next=_safe_next(request.query.get("next")), username=username,
        forgot=bool(context(request).settings.public_url),
    )  # fmt: skip


def _code_form(
    request: web.Request, pending: str, next_path: str, *, error: str = "", status: int = 200
) -> web.Response:
    return signed_out_page(
        request, "signin_code.html.j2", path="/signin", status=status,
        title="Authentication code", error=error, pending=pending, next=next_path,
    )  # fmt: skip


def _locked(ctx: WebContext, peer: str, name: str) -> str:
    wait = ctx.throttle.wait(peer, name)
    if wait <= 0:
        return ""
    return f"Too many failed sign-ins. Try again in {max(1, math.ceil(wait / 60))} minute(s)."


async def signin(request: web.Request) -> web.Response:
    ctx = context(request)
    form = await request.post()
    if form.get("pending"):
        return await _signin_code(request, form)
    name = str(form.get("username", ""))[:USERNAME_MAX_CHARS].strip()
    password = str(form.get("password", ""))[:PASSWORD_MAX_CHARS]
    peer = address(request)
    if locked := _locked(ctx, peer, name):
        return await signin_form(request, error=locked, status=429, username=name)

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
    next_path = _safe_next(str(form.get("next", "")))
    if user.totp:
        # The password was right; the throttle forgets nothing until the code is right too.
        return _code_form(request, auth.pending_totp(ctx.signer, user.id, ctx.clock()), next_path)
    if user.operator and ctx.settings.require_totp_for_operators:
        return await signin_form(
            request,
            error=f"Operators sign in with an authentication code here, and {user.name} has"
            f" none yet: enrol with `rosterdrop user totp {user.name}`, then sign in.",
            status=403,
            username=name,
        )
    ctx.throttle.succeeded(peer, name)
    raise await _start_session(request, user, next_path)


async def _signin_code(request: web.Request, form: Any) -> web.Response:
    """The second step: the pending token of a right password, and the authentication code."""
    ctx = context(request)
    pending = str(form.get("pending", ""))
    code = str(form.get("code", ""))[:CODE_MAX_CHARS]
    next_path = _safe_next(str(form.get("next", "")))
    now = ctx.clock()
    user_id = auth.pending_user_id(ctx.signer, pending, now)

    def find() -> users.User | None:
        with ctx.db.read() as conn:
            found = users.by_id(conn, user_id) if user_id is not None else None
        return found if found is not None and not found.disabled and found.totp else None

    user = await asyncio.to_thread(find)
    if user is None:
        return await signin_form(
            request, error="The sign-in took too long: enter your password again.", status=401
        )
    peer = address(request)
    if locked := _locked(ctx, peer, user.name):
        return _code_form(request, pending, next_path, error=locked, status=429)

    def accept() -> bool:
        with ctx.db.write() as conn:
            return accounts.accept_totp_code(conn, user, code, now)

    if not await asyncio.to_thread(accept):
        ctx.throttle.failed(peer, user.name)
        return _code_form(
            request, pending, next_path,
            error="Wrong authentication code (or one already used): enter the current one.",
            status=401,
        )  # fmt: skip
    ctx.throttle.succeeded(peer, user.name)
    raise await _start_session(request, user, next_path)


async def _start_session(
    request: web.Request, user: users.User, next_path: str
) -> web.HTTPSeeOther:
    ctx = context(request)
    token, csrf = auth.new_token(), auth.new_token()
    now = ctx.clock()
    peer = address(request)

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
    response = web.HTTPSeeOther(next_path)
    set_session_cookie(response, ctx.signer.sign(token), secure=secure_cookies(request))
    response.del_cookie(auth.SIGNIN_COOKIE, path="/signin")
    return response


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
