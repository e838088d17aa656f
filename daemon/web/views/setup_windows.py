"""The Setup page's pause windows: add one (checked as `tenant pause add` checks it, a
one-time override only with its confirmation box ticked), remove one. Each change is
audited; another tenant's window is not found."""

from __future__ import annotations

import asyncio
from datetime import datetime

from aiohttp import web

from daemon.errors import ConfigError
from daemon.roster.windows import PauseWindow, parse_day
from daemon.store import windows
from daemon.store.tenants import Tenant
from daemon.web.context import context
from daemon.web.views import data
from daemon.web.views.pages import signed_in
from daemon.web.views.setup_page import SetupForm, audit_change, render, visible_tenant
from daemon.windowclock import window_now

WINDOW_LABEL = "Pause window"
WINDOW_FIELDS = ("starts_on", "ends_on", "note", "expect_percent")


def _expected(raw: str, confirmed: bool) -> float | None:
    if not raw.strip():
        return None
    try:
        percent = float(raw)
    except ValueError:
        raise ConfigError(f"expected changes: {raw!r} is not a number") from None
    if not confirmed:
        raise ConfigError(
            "tick the box that confirms the expected changes: the first import after the"
            " window may then change that much without a pause"
        )
    return percent


async def add_window(request: web.Request) -> web.Response:
    user = signed_in(request)
    ctx = context(request)
    name = request.match_info["tenant"]
    form = await request.post()
    posted = {key: str(form.get(key, "") or "") for key in WINDOW_FIELDS}
    yearly = form.get("yearly") is not None
    confirmed = form.get("confirm_expect") is not None
    now: datetime = window_now(ctx.clock)

    def store() -> tuple[Tenant, str, PauseWindow | None]:
        with ctx.db.write() as conn:
            tenant = visible_tenant(conn, user, name)
            try:
                window = windows.add(
                    conn, tenant.id, parse_day(posted["starts_on"], "from"),
                    parse_day(posted["ends_on"], "to"), zone=ctx.windows.zone(), now=now,
                    by=user.name, note=posted["note"], yearly=yearly,
                    expect_percent=_expected(posted["expect_percent"], confirmed),
                )  # fmt: skip
            except ConfigError as exc:
                return tenant, str(exc), None
            audit_change(conn, ctx, request, user, tenant, "pause_window_added", window.described())
            return tenant, "", window

    tenant, error, window = await asyncio.to_thread(store)
    if error or window is None:
        refused = SetupForm(window_error=f"{WINDOW_LABEL}: {error}", window_values=posted)
        return await render(request, tenant, refused, status=400)
    said = (
        f"The pause window {window.dates()} was added: uploads from {window.starts_on} through"
        f" {window.ends_on} are checked but not applied."
    )
    return await render(request, tenant, SetupForm(result=said))


async def remove_window(request: web.Request) -> web.Response:
    user = signed_in(request)
    ctx = context(request)
    name = request.match_info["tenant"]
    raw = str((await request.post()).get("window_id", "") or "")

    def store() -> tuple[Tenant, PauseWindow]:
        with ctx.db.write() as conn:
            tenant = visible_tenant(conn, user, name)
            if not raw.isdigit() or int(raw) > data.LARGEST_ID:  # the query would overflow
                raise web.HTTPNotFound(text=f"no pause window {raw!r}")
            window = windows.remove(conn, tenant.id, int(raw))  # another tenant's: not found
            detail = window.described()
            audit_change(conn, ctx, request, user, tenant, "pause_window_removed", detail)
            return tenant, window

    tenant, window = await asyncio.to_thread(store)
    said = (
        f"The pause window {window.dates()} was removed: an upload it held is imported at the"
        " daemon's next look."
    )
    return await render(request, tenant, SetupForm(result=said))
