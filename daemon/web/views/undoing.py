"""Undo from the web: the confirmation (what the undo changes, which imports it reverses and
their change browser), then the same undo as `rosterdrop imports undo`, audited."""

from __future__ import annotations

import asyncio

from aiohttp import web

from daemon import undo
from daemon.roster.outcome import ImportState
from daemon.store import imports
from daemon.store.database import Database
from daemon.store.users import User
from daemon.web.context import address, context
from daemon.web.views import data, pages
from daemon.web.views.decisions import NOTE_MAX_CHARS


def _undoable(db: Database, user: User, import_id: int) -> undo.UndoPlan:
    """What undoing it changes, if `user` sees the import (else a 404)."""
    record = data.visible_import(db, user, import_id)
    return undo.plan_undo(db, record.id)


async def confirm_undo(request: web.Request) -> web.Response:
    """What undoing changes, said (and linked record by record) before it is done."""
    user = pages.signed_in(request)
    ctx = context(request)
    import_id = int(request.match_info["id"])
    record = await asyncio.to_thread(data.visible_import, ctx.db, user, import_id)
    if record.state not in imports.APPLIED:
        raise web.HTTPSeeOther(f"/imports/{record.id}")
    shown = await asyncio.to_thread(_undoable, ctx.db, user, import_id)
    return ctx.templates.page(
        "undo.html.j2", **pages.page_values(request, f"Undo import #{record.id}"),
        record=record, shown=shown, why=undo.not_newest(shown) if shown.back_to else "",
        changes=data.what_changes(shown.plan.entities),
    )  # fmt: skip


async def undo_import(request: web.Request) -> web.Response:
    """Run the undo the person confirmed (back to this import: the page said what that is),
    audit it, and show the new undo import."""
    user = pages.signed_in(request)
    ctx = context(request)
    import_id = int(request.match_info["id"])
    form = await request.post()
    note = str(form.get("note", "") or "").strip()[:NOTE_MAX_CHARS]
    raw = str(form.get("newest", "") or "")
    newest = int(raw) if raw.isdigit() and int(raw) <= data.LARGEST_ID else None
    record = await asyncio.to_thread(data.visible_import, ctx.db, user, import_id)
    # Off the event loop: the undo plans and applies in this process, as the CLI's does.
    report = await asyncio.to_thread(ctx.pipeline.run, await asyncio.to_thread(
        undo.ask, ctx.pipeline, record.id, back_to=True, newest=newest))  # fmt: skip
    done = await asyncio.to_thread(data.visible_import, ctx.db, user, report.import_id)
    await asyncio.to_thread(
        data.record_decision, ctx.db, user, done, "undo", report.state,
        f"undo back to #{record.id}" + (f"; {note}" if note else ""), address(request),
        ctx.clock(),
    )  # fmt: skip
    ctx.import_done(report.import_id)
    view = await asyncio.to_thread(data.import_view, ctx.db, user, report.import_id)
    result = (
        f"Undone: the roster is back to what it was before import #{record.id} was applied."
        if report.state is ImportState.IMPORTED
        else f"The undo {report.state.value.replace('_', ' ')}: nothing was changed."
    )
    return ctx.templates.page(
        "import.html.j2", **pages.page_values(request, f"Import #{view.record.id}"),
        view=view, result=result,
    )  # fmt: skip
