"""The operator's Audit log page: every tenant's entries, newest first, filtered by tenant,
user and action, paged by id. The filters are typed, not chosen from lists: listing every
tenant or every action ever written would cost a scan of thousands of rows per view."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from daemon.store import tenants, users
from daemon.store.audit_actions import AUDIT_ACTIONS
from daemon.web.context import WebContext, context
from daemon.web.views.operator import before_id, operator_only
from daemon.web.views.pages import page_values

AUDIT_PAGE_SIZE = 50  # entries per page, newest first


def _page(ctx: WebContext, filters: dict[str, str], before: int | None) -> dict[str, Any]:
    """One page of entries and one more (to know if there are older ones), with the names
    of the tenants they are about."""
    with ctx.db.read() as conn:
        tenant_id = None
        if filters["tenant"]:
            found = tenants.find(conn, filters["tenant"])
            if found is None:
                return {"entries": [], "names": {}, "older": None}
            tenant_id = found.id
        entries = users.audit_entries(
            conn, limit=AUDIT_PAGE_SIZE + 1, tenant_id=tenant_id,
            user_name=filters["user"] or None, action=filters["action"] or None, before=before,
        )  # fmt: skip
        older = entries[AUDIT_PAGE_SIZE - 1].id if len(entries) > AUDIT_PAGE_SIZE else None
        shown = entries[:AUDIT_PAGE_SIZE]
        ids = {e.tenant_id for e in shown if e.tenant_id is not None}
        names = {t.id: t.name for t in tenants.by_ids(conn, ids)}
        return {"entries": shown, "names": names, "older": older}


async def audit_page(request: web.Request) -> web.Response:
    operator_only(request)
    ctx = context(request)
    filters = {key: request.query.get(key, "").strip() for key in ("tenant", "user", "action")}
    found = await asyncio.to_thread(_page, ctx, filters, before_id(request))
    return ctx.templates.page(
        "operator_audit.html.j2", **page_values(request, "Audit log"), filters=filters,
        actions=AUDIT_ACTIONS, **found,
    )  # fmt: skip
