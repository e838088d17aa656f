"""The operator's Audit log page: every tenant's entries, newest first, filtered by tenant,
user and action, paged by id."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from daemon.store import tenants, users
from daemon.web.context import WebContext, context
from daemon.web.views.operator import before_id, common, operator_only

AUDIT_PAGE_SIZE = 50  # entries per page, newest first


def _page(ctx: WebContext, filters: dict[str, str], before: int | None) -> dict[str, Any]:
    with ctx.db.read() as conn:
        everyone = tenants.list_all(conn)
        names = {t.id: t.name for t in everyone}
        tenant_id = None
        if filters["tenant"]:
            found = tenants.find(conn, filters["tenant"])
            if found is None:
                return {"entries": [], "tenants": everyone, "names": names, "older": None,
                        "actions": users.audit_actions(conn)}  # fmt: skip
            tenant_id = found.id
        entries = users.audit_entries(
            conn, limit=AUDIT_PAGE_SIZE + 1, tenant_id=tenant_id,
            user_name=filters["user"] or None, action=filters["action"] or None, before=before,
        )  # fmt: skip
        older = entries[AUDIT_PAGE_SIZE - 1].id if len(entries) > AUDIT_PAGE_SIZE else None
        return {"entries": entries[:AUDIT_PAGE_SIZE], "tenants": everyone, "names": names,
                "older": older, "actions": users.audit_actions(conn)}  # fmt: skip


async def audit_page(request: web.Request) -> web.Response:
    operator_only(request)
    ctx = context(request)
    filters = {key: request.query.get(key, "").strip() for key in ("tenant", "user", "action")}
    found = await asyncio.to_thread(_page, ctx, filters, before_id(request))
    return ctx.templates.page(
        "operator_audit.html.j2", **common(request, "Audit log"), filters=filters, **found
    )
