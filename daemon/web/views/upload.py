"""Choose Files: a district uploads its five files in the browser, sees the dry run first (the
problems, what processing would change, the thresholds that would pause it), then Process
Import hands them to the same intake and pipeline as SFTP (source `web`), or Discard."""

from __future__ import annotations

import asyncio
import shutil
import urllib.parse
from typing import Any

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from daemon.clever.files import find_files
from daemon.errors import Conflict, RosterdropError, UploadRefused
from daemon.notify.figures import PERCENT_NOTE, file_figures, plural
from daemon.notify.paused import threshold_line
from daemon.roster.outcome import RESUMABLE
from daemon.roster.problems import Problem
from daemon.store import imports, tenants, users
from daemon.store.tenants import Tenant
from daemon.store.users import User
from daemon.web import auth
from daemon.web.context import WebContext, address, context, session
from daemon.web.uploads import (
    MAX_FIELD_BYTES,
    MULTIPART_OVERHEAD_BYTES,
    Pending,
    UploadDesk,
    size_text,
)
from daemon.web.views.data import ProblemFilter, problem_page
from daemon.web.views.pages import int_param, page_values, signed_in, tenant_chooser

# Process Import waits this long for the import to end or pause, so that the import's page
# shows its result; a longer one shows as running there.
PROCESS_WAIT_SECONDS = 15.0
PROCESS_POLL_SECONDS = 0.2
# What aiohttp raises for a body that is not the multipart it says it is.
_BROKEN_BODY = (ValueError, HttpProcessingError)
CSRF_REFUSED = "This form has expired or did not come from this site: reload the page."


def _desk(request: web.Request) -> UploadDesk:
    desk = context(request).uploads
    if desk is None:
        raise web.HTTPServiceUnavailable(
            reason="This Import Manager runs without an import worker: upload the files by SFTP."
        )
    return desk


def _visible_tenant(ctx: WebContext, user: User, name: str) -> Tenant:
    """Another tenant's upload page is not found, exactly as one that does not exist."""
    with ctx.db.read() as conn:
        found = tenants.find(conn, name)
    if found is None or not auth.can_see_tenant(user, found.id):
        raise web.HTTPNotFound()
    return found


async def choose(request: web.Request) -> web.Response:
    """`/upload`: a district's own page; an operator's for the tenant chosen, else a list."""
    user = signed_in(request)
    if not user.operator:
        raise web.HTTPSeeOther(f"/tenants/{user.tenant}/upload")
    chosen = request.query.get("tenant", "")
    if chosen:
        raise web.HTTPSeeOther(f"/tenants/{urllib.parse.quote(chosen, safe='')}/upload")
    return await tenant_chooser(
        request, title="Choose Files", intro="Choose the tenant whose five files to upload.",
        link=lambda t: f"/tenants/{urllib.parse.quote(t.name, safe='')}/upload",
    )  # fmt: skip


async def show(request: web.Request) -> web.Response:
    user = signed_in(request)
    ctx = context(request)
    tenant = await asyncio.to_thread(_visible_tenant, ctx, user, request.match_info["tenant"])
    pending = await asyncio.to_thread(_desk(request).pending, tenant.name)
    return _page(request, tenant, pending)


def _page(
    request: web.Request,
    tenant: Tenant,
    pending: Pending | None,
    *,
    status: int = 200,
    error: str = "",
    result: str = "",
) -> web.Response:
    ctx = context(request)
    settings = ctx.settings
    values: dict[str, Any] = {"pending": pending, "error": error, "result": result}
    if pending is not None:
        run = pending.dry_run
        chosen = ProblemFilter(
            severity=request.query.get("severity", ""),
            file=request.query.get("file", ""),
            code=request.query.get("code", ""),
            page=int_param(request.query, "page") or 1,
        )
        values.update(
            figures=file_figures(run.files, run.entities),
            thresholds=[threshold_line(t) for t in run.tripped],
            size=size_text(pending.total_bytes),
            percent_note=PERCENT_NOTE,
            **_problems(run.problems, chosen),
            problems_total=sum(run.problem_totals.values()),
        )
    return ctx.templates.page(
        "upload.html.j2", status=status, **page_values(request, f"Choose Files for {tenant.name}"),
        tenant=tenant, max_file=size_text(settings.upload_max_file_bytes),
        max_total=size_text(settings.upload_max_bytes),
        file_bound=settings.upload_max_file_bytes, total_bound=settings.upload_max_bytes,
        minutes=f"{settings.upload_pending_minutes:g}", **values,
    )  # fmt: skip


def _problems(problems: tuple[Problem, ...], chosen: ProblemFilter) -> dict[str, Any]:
    """The dry run's problems as the import page lists them: grouped, filtered, paged."""
    return {**problem_page(problems, chosen).fields(), "problems_kept": len(problems)}


async def check(request: web.Request) -> web.StreamResponse:
    """Check files: the multipart body streamed to disk, then the dry run, then the answer.
    The CSRF token is the body's first field (app.py lets this route check it itself)."""
    user = signed_in(request)
    ctx = context(request)
    desk = _desk(request)
    tenant = await asyncio.to_thread(_visible_tenant, ctx, user, request.match_info["tenant"])
    if request.content_type != "multipart/form-data":
        raise web.HTTPBadRequest(reason="Check files sends the files as multipart/form-data.")
    try:
        reader = await request.multipart()
        csrf_given = await _csrf_first(reader, request)
    except _BROKEN_BODY as exc:  # no boundary, or a body that is no multipart at all
        raise web.HTTPBadRequest(reason=f"The upload could not be read: {exc}.") from None
    if not csrf_given:
        return await _refused(request, tenant, CSRF_REFUSED, 403, audit=False)
    bound = ctx.settings.upload_max_bytes
    length = request.content_length or 0
    if bound and length > bound + MULTIPART_OVERHEAD_BYTES:
        said = f"The files are larger than {size_text(bound)} together ({size_text(length)} sent)"
        return await _refused(request, tenant, said + ": upload them by SFTP instead.", 413)
    try:
        desk.slots.take(tenant.name, user.name, ctx.clock())
    except UploadRefused as exc:
        return await _refused(request, tenant, str(exc), exc.status, audit=False)
    try:
        pending = await _receive_and_check(desk, reader, tenant, user)
    except UploadRefused as exc:
        return await _refused(request, tenant, str(exc), exc.status)
    except _BROKEN_BODY as exc:
        said = f"The upload could not be read ({exc}): nothing was kept; try again."
        return await _refused(request, tenant, said, 400)
    except RosterdropError as exc:
        said = f"The files could not be checked: {exc}. Nothing was kept; try again."
        return await _refused(request, tenant, said, 503)
    finally:
        desk.slots.give_back(tenant.name)
    await asyncio.to_thread(
        _audit, ctx, request, user, tenant, "upload_checked", _checked_detail(pending)
    )
    raise web.HTTPSeeOther(f"/tenants/{urllib.parse.quote(tenant.name, safe='')}/upload")


async def _csrf_first(reader: MultipartReader, request: web.Request) -> bool:
    """The body's first part is the session's CSRF token, or nothing of it is read further."""
    current = session(request)
    part = await reader.next()
    if current is None or not isinstance(part, BodyPartReader) or part.name != auth.CSRF_FIELD:
        return False
    given = b""
    while chunk := await part.read_chunk(MAX_FIELD_BYTES):
        given += chunk
        if len(given) > MAX_FIELD_BYTES:
            return False
    return auth.same_token(given.decode("utf-8", "replace"), current.csrf_token)


async def _receive_and_check(
    desk: UploadDesk, reader: MultipartReader, tenant: Tenant, user: User
) -> Pending:
    incoming = await asyncio.to_thread(desk.incoming, tenant.name)
    try:
        received = await desk.receive(reader, incoming)
        await desk.check(tenant.name, incoming)
        return await asyncio.to_thread(desk.install, tenant.name, incoming, user.name, received)
    finally:  # refused, failed or installed: the incoming folder goes (installed: it is empty)
        await asyncio.to_thread(shutil.rmtree, incoming, True)


def _checked_detail(pending: Pending) -> str:
    run = pending.dry_run
    totals = run.problem_totals
    detail = (
        f"{plural(len(pending.names), 'file')}, {size_text(pending.total_bytes)}:"
        f" {plural(totals.get('fatal', 0), 'fatal problem')},"
        f" {plural(totals.get('error', 0), 'error')}, {plural(totals.get('warning', 0), 'warning')}"
    )
    if run.tripped:
        detail += "; would pause: " + "; ".join(t.describe() for t in run.tripped)
    return detail


async def _refused(
    request: web.Request, tenant: Tenant, message: str, status: int, *, audit: bool = True
) -> web.Response:
    """The answer to a refused upload: the message, and the pending upload as it was."""
    ctx = context(request)
    current = session(request)
    if audit and current is not None:
        await asyncio.to_thread(
            _audit, ctx, request, current.user, tenant, "upload_refused", message
        )
    pending = await asyncio.to_thread(_desk(request).pending, tenant.name)
    return _page(request, tenant, pending, status=status, error=message)


async def process(request: web.Request) -> web.Response:
    """Process Import: the pending files into the spool as an import of source `web`, run by
    the daemon's import worker as any SFTP upload is; then the import's page."""
    user = signed_in(request)
    ctx = context(request)
    desk = _desk(request)
    tenant = await asyncio.to_thread(_visible_tenant, ctx, user, request.match_info["tenant"])
    token = str((await request.post()).get("pending", "") or "")
    try:
        desk.slots.take(tenant.name, user.name, ctx.clock())
    except UploadRefused as exc:
        raise Conflict(str(exc)) from None
    try:
        import_id = await asyncio.to_thread(
            _hand_over, ctx, desk, user, tenant.name, token, address(request)
        )
    finally:
        desk.slots.give_back(tenant.name)
    desk.submit(tenant.name, import_id)
    await _wait_for(ctx, import_id)
    raise web.HTTPSeeOther(f"/imports/{import_id}")


def _hand_over(
    ctx: WebContext, desk: UploadDesk, user: User, name: str, token: str, client: str
) -> int:
    pending = desk.pending(name)
    if pending is None or pending.token != token:
        raise Conflict(
            "These files are no longer waiting to be processed: they were processed,"
            " discarded, replaced by a newer upload, or expired. Check files again."
        )
    if pending.dry_run.fatal:
        raise Conflict("These files cannot be imported (see their fatal problems): fix them,"
                       " then Check files again.")  # fmt: skip
    with ctx.db.read() as conn:
        tenant = tenants.get(conn, name)
    if tenant.disabled:
        raise Conflict(f"{tenant.name} is disabled: its uploads are not imported.")
    import_id = ctx.pipeline.receive(tenant, find_files(pending.files), source="web", move=True)
    with ctx.db.write() as conn:
        users.audit(
            conn, user_name=user.name, action="upload_processed", now=ctx.clock(),
            tenant_id=tenant.id, import_id=import_id, address=client,
            detail=f"import #{import_id}: {plural(len(pending.names), 'file')},"
            f" {size_text(pending.total_bytes)}, checked {pending.uploaded_at:%Y-%m-%d %H:%M} UTC",
        )  # fmt: skip
    desk.remove(name)
    return import_id


async def _wait_for(ctx: WebContext, import_id: int) -> None:
    """Until the import ends or pauses (or PROCESS_WAIT_SECONDS pass)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PROCESS_WAIT_SECONDS
    while loop.time() < deadline:
        if await asyncio.to_thread(_state_of, ctx, import_id) not in RESUMABLE:
            return
        await asyncio.sleep(PROCESS_POLL_SECONDS)


def _state_of(ctx: WebContext, import_id: int) -> object:
    with ctx.db.read() as conn:
        return imports.get(conn, import_id).state


async def discard(request: web.Request) -> web.Response:
    user = signed_in(request)
    ctx = context(request)
    desk = _desk(request)
    tenant = await asyncio.to_thread(_visible_tenant, ctx, user, request.match_info["tenant"])
    token = str((await request.post()).get("pending", "") or "")
    try:
        desk.slots.take(tenant.name, user.name, ctx.clock())
    except UploadRefused as exc:
        raise Conflict(str(exc)) from None
    try:
        pending = await asyncio.to_thread(desk.pending, tenant.name)
        if pending is None or pending.token != token:
            raise Conflict("These files are no longer waiting: nothing was discarded.")
        await asyncio.to_thread(desk.remove, tenant.name)
    finally:
        desk.slots.give_back(tenant.name)
    detail = f"{plural(len(pending.names), 'file')} checked by {pending.uploaded_by}"
    await asyncio.to_thread(_audit, ctx, request, user, tenant, "upload_discarded", detail)
    return _page(request, tenant, None, result="The files were discarded: nothing was imported.")


def _audit(
    ctx: WebContext, request: web.Request, user: User, tenant: Tenant, action: str, detail: str
) -> None:
    with ctx.db.write() as conn:
        users.audit(
            conn, user_name=user.name, action=action, now=ctx.clock(), tenant_id=tenant.id,
            detail=detail, address=address(request),
        )  # fmt: skip
