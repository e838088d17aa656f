"""The HTML pages: the imports list, an import, its problem report, the confirmation."""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from daemon.errors import NotFound
from daemon.notify.problem_list import formula_safe_report
from daemon.roster.outcome import ImportState
from daemon.store import tenants
from daemon.store.tenants import Tenant
from daemon.store.users import User
from daemon.web.context import WebContext, context, session
from daemon.web.views import data, decisions, uploaded

# The largest problem report a download sends whole (the kept rows are bounded, the report of
# a file full of errors is not): past it, the first rows and a note on the page.
DOWNLOAD_LIMIT_BYTES = 50 * 1024 * 1024
_DECIDED = {
    ImportState.IMPORTED: "Approved: the import was applied.",
    ImportState.IMPORTED_WITH_ERRORS: "Approved: the import was applied; rows with errors"
    " were skipped.",
    ImportState.REJECTED: "Rejected: nothing was changed.",
    ImportState.PAUSED: "Paused again: the roster changed since the import was checked, and"
    " the import now goes past what was approved. Review it again.",
    ImportState.FAILED: "The import failed: nothing was changed.",
}


def signed_in(request: web.Request) -> User:
    """The user, or a redirect to the sign-in form that comes back here."""
    current = session(request)
    if current is None:
        back = "" if request.path == "/" else "?next=" + urllib.parse.quote(request.path_qs)
        raise web.HTTPSeeOther(f"/signin{back}")
    return current.user


def page_values(request: web.Request, title: str) -> dict[str, Any]:
    """What every signed-in page's template is given (the title, the user, the CSRF token)."""
    current = session(request)
    assert current is not None
    return {"title": title, "user": current.user, "csrf_token": current.csrf_token}


async def tenant_chooser(
    request: web.Request, *, title: str, intro: str, link: Callable[[Tenant], str]
) -> web.Response:
    """An operator who named no tenant picks one (Setup, Roster, Choose Files)."""
    ctx = context(request)
    everyone = await asyncio.to_thread(_all_tenants, ctx)
    return ctx.templates.page(
        "choose_tenant.html.j2", **page_values(request, title), intro=intro,
        links=[(t, link(t)) for t in everyone],
    )  # fmt: skip


def _all_tenants(ctx: WebContext) -> list[Tenant]:
    with ctx.db.read() as conn:
        return tenants.list_all(conn)


def int_param(query: MultiMapping[str], name: str) -> int | None:
    raw = query.get(name, "")
    # Malformed or past what a query takes (data.LARGEST_ID): ignored, as if not given.
    return int(raw) if raw.isdigit() and int(raw) <= data.LARGEST_ID else None


def state_param(query: MultiMapping[str]) -> ImportState | None:
    raw = query.get("state", "")
    try:
        return ImportState(raw) if raw else None
    except ValueError:
        raise NotFound(f"no state {raw!r}") from None


async def home(request: web.Request) -> web.Response:
    signed_in(request)
    raise web.HTTPSeeOther("/imports")


async def imports_list(request: web.Request) -> web.Response:
    user = signed_in(request)
    ctx = context(request)
    page = await asyncio.to_thread(
        data.imports_page, ctx.db, user,
        tenant=request.query.get("tenant") or None, state=state_param(request.query),
        before=int_param(request.query, "before"),
    )  # fmt: skip
    return ctx.templates.page(
        "imports.html.j2", **page_values(request, "Imports"), page=page,
        states=[s.value for s in ImportState],
    )  # fmt: skip


def _import_id(request: web.Request) -> int:
    return int(request.match_info["id"])


async def import_page(request: web.Request) -> web.Response:
    user = signed_in(request)
    ctx = context(request)
    chosen = data.ProblemFilter(
        severity=request.query.get("severity", ""),
        file=request.query.get("file", ""),
        code=request.query.get("code", ""),
        page=int_param(request.query, "page") or 1,
    )
    view = await asyncio.to_thread(data.import_view, ctx.db, user, _import_id(request), chosen)
    return ctx.templates.page(
        "import.html.j2", **page_values(request, f"Import #{view.record.id}"), view=view,
        uploaded=await _uploaded(ctx, view),
    )  # fmt: skip


async def _uploaded(ctx: WebContext, view: data.ImportView) -> uploaded.UploadedFiles:
    return await asyncio.to_thread(
        uploaded.uploaded_files, ctx.pipeline.paths, view.record, view.report
    )


async def uploaded_file(request: web.Request) -> web.StreamResponse:
    """One of the five files as it was sent (views/uploaded.py), to whoever sees the import."""
    user = signed_in(request)
    ctx = context(request)
    record = await asyncio.to_thread(data.visible_import, ctx.db, user, _import_id(request))
    return await uploaded.download(request, user, record)


async def problems_csv(request: web.Request) -> web.Response:
    user = signed_in(request)
    ctx = context(request)
    view = await asyncio.to_thread(data.import_view, ctx.db, user, _import_id(request))
    filename = f"import-{view.record.id}-problems.csv"
    return await report_download(view.report.report_csv, filename, "import")


async def report_download(path: Path | None, filename: str, what: str) -> web.Response:
    """A problem report CSV (an import's, a check's) as a formula-safe download."""
    attachment = (
        await asyncio.to_thread(formula_safe_report, path, filename, DOWNLOAD_LIMIT_BYTES)
        if path
        else None
    )
    if attachment is None:
        raise NotFound(f"the problem report of this {what} is no longer kept")
    response = web.Response(body=attachment.data, content_type="text/csv", charset="utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["X-Rosterdrop-Complete"] = "true" if attachment.complete else "false"
    return response


async def confirm(request: web.Request) -> web.Response:
    """What approving (or rejecting) will do, said before it is done."""
    user = signed_in(request)
    ctx = context(request)
    action = request.match_info["action"]
    view = await asyncio.to_thread(data.import_view, ctx.db, user, _import_id(request))
    if not view.paused:
        raise web.HTTPSeeOther(f"/imports/{view.record.id}")
    return ctx.templates.page(
        "confirm.html.j2", **page_values(request, f"{action.title()} import #{view.record.id}"),
        view=view, action=action, changes=data.what_approving_does(view.report),
    )  # fmt: skip


async def decide(request: web.Request) -> web.Response:
    user = signed_in(request)
    ctx = context(request)
    action = request.match_info["action"]
    report = await decisions.decide(request, user, _import_id(request), action)
    view = await asyncio.to_thread(data.import_view, ctx.db, user, report.import_id)
    return ctx.templates.page(
        "import.html.j2", **page_values(request, f"Import #{view.record.id}"), view=view,
        result=_DECIDED.get(report.state, f"The import is {report.state.value}."),
        uploaded=await _uploaded(ctx, view),
    )  # fmt: skip
