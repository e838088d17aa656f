"""The Setup page's /check answer by email: on or off (`checks email` in the shell). Audited."""

from __future__ import annotations

import asyncio

from aiohttp import web

from daemon.store import checks
from daemon.store.tenants import Tenant
from daemon.web.context import context
from daemon.web.views.pages import signed_in
from daemon.web.views.setup_page import SetupForm, audit_change, render, visible_tenant


async def save_check_emails(request: web.Request) -> web.Response:
    user = signed_in(request)
    ctx = context(request)
    name = request.match_info["tenant"]
    form = await request.post()
    on = form.get("email_results") is not None

    def store() -> tuple[Tenant, bool]:
        with ctx.db.write() as conn:
            tenant = visible_tenant(conn, user, name)
            if checks.emails_results(conn, tenant.id) == on:
                return tenant, False
            checks.set_email_results(conn, tenant.id, on)
            detail = "on" if on else "off"
            audit_change(conn, ctx, request, user, tenant, "check_emails", detail)
            return tenant, True

    tenant, changed = await asyncio.to_thread(store)
    said = "emailed too" if on else "only written to /check/results"
    result = f"Check answers are {said}." if changed else "The setting was already so."
    return await render(request, tenant, SetupForm(result=result))
