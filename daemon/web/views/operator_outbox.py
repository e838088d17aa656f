"""The operator's Outbox page: the emails waiting (pending) or given up (failed), with their
recipients, subject, attempts and last error; "retry now", as `rosterdrop outbox retry` does
it, readdressed to the tenant's current addresses, and the running sender woken for it."""

from __future__ import annotations

import asyncio

from aiohttp import web

from daemon.errors import Conflict
from daemon.notify.retry import retry_now
from daemon.store import outbox
from daemon.store.outbox import OutboxMessage, OutboxState
from daemon.web.context import WebContext, context
from daemon.web.views.operator import audit_operator, before_id, operator_only
from daemon.web.views.pages import page_values

OUTBOX_PAGE_SIZE = 50  # emails per page, newest first
WAITING = (OutboxState.PENDING, OutboxState.FAILED)


def _states(request: web.Request) -> tuple[OutboxState, ...]:
    chosen = request.query.get("state", "")
    return tuple(s for s in WAITING if s.value == chosen) or WAITING


def _page(
    ctx: WebContext, states: tuple[OutboxState, ...], before: int | None
) -> list[OutboxMessage]:
    with ctx.db.read() as conn:
        return outbox.page(conn, states, limit=OUTBOX_PAGE_SIZE + 1, before=before)


async def _render(
    request: web.Request, result: str = "", error: str = "", status: int = 200
) -> web.Response:
    ctx = context(request)
    states = _states(request)
    found = await asyncio.to_thread(_page, ctx, states, before_id(request))
    shown = found[:OUTBOX_PAGE_SIZE]
    older = shown[-1].id if len(found) > OUTBOX_PAGE_SIZE else None
    state = states[0].value if len(states) == 1 else ""
    return ctx.templates.page(
        "operator_outbox.html.j2", status=status, **page_values(request, "Outbox"), messages=shown,
        older=older, state=state, states=[s.value for s in WAITING], result=result, error=error,
    )  # fmt: skip


async def outbox_page(request: web.Request) -> web.Response:
    operator_only(request)
    return await _render(request)


async def retry(request: web.Request) -> web.Response:
    user = operator_only(request)
    ctx = context(request)
    message_id = int(request.match_info["id"])

    def store() -> tuple[str, ...]:
        with ctx.db.write() as conn:
            message = outbox.get(conn, message_id)
            recipients = retry_now(conn, message_id, ctx.clock(), ctx.pipeline.smtp)
            detail = f"email #{message_id} ({message.kind}) to {', '.join(recipients)}"
            audit_operator(conn, ctx, request, user, "email_retry", detail, message.tenant_id)
            return recipients

    try:
        recipients = await asyncio.to_thread(store)
    except Conflict as exc:
        return await _render(request, error=str(exc), status=409)
    ctx.pipeline.mail_queued()  # this daemon's sender looks now; others within their poll
    said = f"Email #{message_id} will be sent now to {', '.join(recipients)}."
    return await _render(request, result=said)
