"""The operator's Users page: every account with its role, tenant, last sign-in (while a
session of it lives) and state; disabling (which ends its sessions) and enabling one."""

from __future__ import annotations

import asyncio
from datetime import datetime

from aiohttp import web

from daemon.errors import Conflict
from daemon.store import users
from daemon.store.users import User
from daemon.web.context import WebContext, context
from daemon.web.views.operator import audit_operator, operator_only
from daemon.web.views.pages import page_values

USERS_PAGE_SIZE = 100  # users per page, by name


def _page(ctx: WebContext, after: str | None) -> tuple[list[User], dict[int, datetime]]:
    with ctx.db.read() as conn:
        found = users.users_page(conn, limit=USERS_PAGE_SIZE + 1, after=after)
        return found, users.latest_signins(conn, [u.id for u in found[:USERS_PAGE_SIZE]])


async def _render(request: web.Request, result: str = "", status: int = 200) -> web.Response:
    ctx = context(request)
    found, signins = await asyncio.to_thread(_page, ctx, request.query.get("after") or None)
    shown = found[:USERS_PAGE_SIZE]
    more = shown[-1].name if len(found) > USERS_PAGE_SIZE else None
    return ctx.templates.page(
        "operator_users.html.j2", status=status, **page_values(request, "Users"), accounts=shown,
        signins=signins, next_after=more, result=result,
    )  # fmt: skip


async def users_page(request: web.Request) -> web.Response:
    operator_only(request)
    return await _render(request)


async def set_disabled(request: web.Request) -> web.Response:
    me = operator_only(request)
    ctx = context(request)
    name = request.match_info["name"]
    disabled = request.match_info["action"] == "disable"
    if disabled and name == me.name:
        raise Conflict("You cannot disable your own account: another operator can.")

    def store() -> None:
        with ctx.db.write() as conn:
            account = users.get(conn, name)
            if account.disabled == disabled:
                return
            users.set_disabled(conn, name, disabled)
            action = "user_disabled" if disabled else "user_enabled"
            audit_operator(conn, ctx, request, me, action, f"user {name}", account.tenant_id)

    await asyncio.to_thread(store)
    said = (
        f"User {name} is disabled: its sessions ended and its sign-ins are refused."
        if disabled
        else f"User {name} is enabled: it can sign in again."
    )
    return await _render(request, said)
