"""The Setup page's upload format: Clever's five files, a OneRoster set, or told from the
files (docs/oneroster.md). Checked as `tenant set --input-format` checks it; a change is
audited (`input_format`, before → after)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from daemon.roster.tenant import INPUT_FORMATS
from daemon.store import tenants
from daemon.store.tenants import Tenant
from daemon.web.context import context
from daemon.web.views.pages import signed_in
from daemon.web.views.setup_page import SetupForm, audit_change, render, visible_tenant


async def save_input_format(request: web.Request) -> web.Response:
    user = signed_in(request)
    ctx = context(request)
    name = request.match_info["tenant"]
    form = await request.post()
    chosen = str(form.get("input_format", "") or "")

    def store() -> tuple[Tenant, bool]:
        with ctx.db.write() as conn:
            tenant = visible_tenant(conn, user, name)
            before = tenant.settings.input_format
            if chosen == before:
                return tenant, False
            settings = tenant.settings.updated(input_format=chosen)
            tenants.update(conn, tenant.name, settings=settings)
            audit_change(conn, ctx, request, user, tenant, "input_format", f"{before} → {chosen}")
            return tenants.get(conn, tenant.name), True

    if chosen not in INPUT_FORMATS:
        raise web.HTTPBadRequest(text=f"input_format must be one of {', '.join(INPUT_FORMATS)}")
    tenant, changed = await asyncio.to_thread(store)
    said = "The upload format was saved." if changed else "The upload format was already so."
    return await render(request, tenant, SetupForm(result=said))
