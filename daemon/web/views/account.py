"""A signed-out person's account pages: "forgot password" (which emails a one-time link) and
the link's page, which sets the password and ends every session of the user."""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import web

from daemon import accounts
from daemon.passwords import MIN_PASSWORD_LENGTH, hash_password
from daemon.store import users
from daemon.store.credentials import LinkPurpose
from daemon.web.context import address, context
from daemon.web.views.signin import PASSWORD_MAX_CHARS, signed_out_page

WHO_MAX_CHARS = 254  # the longest email address
# An address shared by several accounts (an operator's and a district's): each gets its own
# link, up to this many; more accounts on one address is a mistake, not a district.
FORGOT_MAX_USERS = 5
SENT = (
    "If the account exists, an email is on its way to its address. The link in it works once,"
    " for {hours}."
)
FORGOT_PATH = "/forgot"
PASSWORD_PATH = "/password/"  # noqa: S105 - a path

log = structlog.get_logger(__name__)


def _hours(ctx_hours: float) -> str:
    return f"{ctx_hours:g} hour{'' if ctx_hours == 1 else 's'}"


async def forgot_form(request: web.Request) -> web.Response:
    ctx = context(request)
    return signed_out_page(
        request, "forgot.html.j2", path=FORGOT_PATH, title="Forgot your password?", sent="",
        available=bool(ctx.settings.public_url), hours=_hours(ctx.settings.password_link_hours),
    )  # fmt: skip


async def forgot(request: web.Request) -> web.Response:
    """Always the same answer, whether the account exists or not, throttled or not."""
    ctx = context(request)
    form = await request.post()
    who = str(form.get("who", ""))[:WHO_MAX_CHARS].strip()
    peer = address(request)
    hours = _hours(ctx.settings.password_link_hours)
    if not ctx.settings.public_url:
        raise web.HTTPSeeOther(FORGOT_PATH)
    if not who:
        return signed_out_page(
            request, "forgot.html.j2", path=FORGOT_PATH, status=400, sent="", available=True,
            title="Forgot your password?", hours=hours,
        )  # fmt: skip
    if ctx.reset_throttle.wait(peer, who) > 0:
        log.warning("web: forgot-password request throttled, no email sent", address=peer)
    else:
        ctx.reset_throttle.failed(peer, who)  # every request counts, whatever it finds
        await asyncio.to_thread(_send_links, request, who, peer)
    return signed_out_page(
        request, "forgot.html.j2", path=FORGOT_PATH, title="Forgot your password?",
        sent=SENT.format(hours=hours), available=True, hours=hours,
    )  # fmt: skip


def _send_links(request: web.Request, who: str, peer: str) -> None:
    ctx = context(request)
    now = ctx.clock()
    with ctx.db.write() as conn:
        if "@" in who:
            found = users.with_email(conn, who, FORGOT_MAX_USERS)
        else:
            found = [u] if (u := users.find(conn, who)) is not None else []
        for user in found:
            if user.disabled or not user.email:
                continue
            accounts.send_password_link(
                conn, user, LinkPurpose.RESET, web=ctx.settings, smtp=ctx.pipeline.smtp, now=now
            )
            users.audit(
                conn, user_name=user.name, action="password_link_sent", now=now,
                tenant_id=user.tenant_id, detail=f"forgot password: a link to {user.email}",
                address=peer,
            )  # fmt: skip


def _token(request: web.Request) -> str:
    return request.match_info["token"]


def _password_page(
    request: web.Request, *, dead: bool = False, error: str = "", status: int = 200
) -> web.Response:
    ctx = context(request)
    return signed_out_page(
        request, "password.html.j2", path=PASSWORD_PATH, status=status,
        title="Choose your password", dead=dead, error=error, min_length=MIN_PASSWORD_LENGTH,
        action=request.path, forgot=bool(ctx.settings.public_url),
    )  # fmt: skip


async def password_form(request: web.Request) -> web.Response:
    ctx = context(request)

    def live() -> bool:
        with ctx.db.read() as conn:
            return accounts.link_is_live(conn, _token(request), ctx.clock())

    if not await asyncio.to_thread(live):
        return _password_page(request, dead=True, status=404)
    return _password_page(request)


async def set_password(request: web.Request) -> web.Response:
    ctx = context(request)
    form = await request.post()
    password = str(form.get("password", ""))
    repeat = str(form.get("repeat", ""))
    error = ""
    if len(password) < MIN_PASSWORD_LENGTH:
        error = f"New password: at least {MIN_PASSWORD_LENGTH} characters, not {len(password)}."
    elif len(password) > PASSWORD_MAX_CHARS:
        error = f"New password: at most {PASSWORD_MAX_CHARS} characters."
    elif password != repeat:
        error = "Repeat the new password: it differs from the new password."
    if error:
        return _password_page(request, error=error, status=400)
    hashed = await asyncio.to_thread(hash_password, password)
    peer = address(request)

    def apply() -> users.User | None:
        now = ctx.clock()
        with ctx.db.write() as conn:
            user = accounts.set_password_by_link(conn, _token(request), hashed, now)
            if user is not None:
                users.audit(
                    conn, user_name=user.name, action="password_set_by_link", now=now,
                    tenant_id=user.tenant_id, address=peer,
                    detail="a new password; its sessions (after a reset, its tokens) ended",
                )  # fmt: skip
        return user

    if await asyncio.to_thread(apply) is None:
        return _password_page(request, dead=True, status=404)
    raise web.HTTPSeeOther("/signin?done=password")
