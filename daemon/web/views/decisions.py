"""Approve and reject from the web: the same Pipeline calls as the CLI, then the audit log."""

from __future__ import annotations

import asyncio

from aiohttp import web

from daemon.errors import Conflict
from daemon.roster.outcome import ImportReport, ImportState
from daemon.store.users import User
from daemon.web.context import address, context
from daemon.web.views import data

NOTE_MAX_CHARS = 1000
ACTIONS = ("approve", "reject")


async def decide(request: web.Request, user: User, import_id: int, action: str) -> ImportReport:
    """Run the decision; a 404 for another tenant's import, a 409 for one not paused."""
    ctx = context(request)
    if action not in ACTIONS:  # pragma: no cover - the route allows only these
        raise web.HTTPNotFound()
    form = await request.post() if request.content_type.endswith("form-urlencoded") else {}
    note = str(form.get("note", "") or "").strip()[:NOTE_MAX_CHARS]
    if not note and request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:  # not JSON (or not UTF-8): the client's mistake, said as such
            raise web.HTTPBadRequest(reason='The body must be JSON, e.g. {"note": "…"}.') from None
        note = str(body.get("note", "") if isinstance(body, dict) else "").strip()
        note = note[:NOTE_MAX_CHARS]
    record = await asyncio.to_thread(data.visible_import, ctx.db, user, import_id)
    if record.state is not ImportState.PAUSED:
        raise Conflict(
            f"Import #{import_id} is {str(record.state).replace('_', ' ')}: only a paused"
            " import can be approved or rejected."
        )
    run = ctx.pipeline.approve if action == "approve" else ctx.pipeline.reject
    # Off the event loop: an approval re-plans and applies the import, as the CLI does.
    report = await asyncio.to_thread(run, import_id, user.name)
    await asyncio.to_thread(
        data.record_decision, ctx.db, user, record, action, report.state, note,
        address(request), ctx.clock(),
    )  # fmt: skip
    ctx.import_done(import_id)
    return report
