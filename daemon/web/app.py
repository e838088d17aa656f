"""The Import Manager's aiohttp application: routes, and the middleware every request passes
(errors to pages, security headers, the session, CSRF on every POST)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import timedelta
from pathlib import Path

import structlog
from aiohttp import web

from daemon.errors import Conflict, NotFound, RosterdropError
from daemon.store import tenants, users
from daemon.web import api, auth, bearer, openapi
from daemon.web.context import CONTEXT, WebContext, context, session, set_session
from daemon.web.views import (
    account,
    changes,
    operator,
    operator_audit,
    operator_outbox,
    operator_tenants,
    operator_users,
    pages,
    roster,
    setup,
    setup_format,
    setup_keys,
    setup_rules,
    setup_windows,
    signin,
    undoing,
    upload,
)

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STATIC = Path(__file__).with_name("static")
# A session's last request is written at most this often (a write per page view would
# serialise every reader on SQLite); the idle timeout is exact to within this.
TOUCH_EVERY_SECONDS = 60.0
# Forms and API calls are small. Choose Files streams its body (views/upload.py) with
# bounds of its own ([web] upload_max_bytes): aiohttp's limit applies only to bodies read whole.
MAX_BODY_BYTES = 64 * 1024
# Routes that stream a multipart body and check its first field, the CSRF token, themselves.
_CSRF_IN_BODY: frozenset[Handler] = frozenset({upload.check})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def _problem(request: web.Request, status: int, message: str) -> web.Response:
    if _is_api(request):
        return web.json_response({"error": message}, status=status)
    user = current.user if (current := session(request)) else None
    return context(request).templates.page(
        "error.html.j2", status=status, title=f"Error {status}", user=user, message=message,
        csrf_token=current.csrf_token if current else "",
    )  # fmt: skip


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except NotFound:
        return _problem(request, 404, "Not found.")
    except Conflict as exc:
        return _problem(request, 409, str(exc))
    except web.HTTPException as exc:
        if exc.status >= 400:
            response = _problem(request, exc.status, exc.reason)
            # A 405 says which methods there are (RFC 9110), a 401 how to authenticate.
            for name in ("Allow", "WWW-Authenticate"):
                if name in exc.headers:
                    response.headers[name] = exc.headers[name]
            return response
        raise
    except RosterdropError as exc:
        log.error("web request failed", path=request.path, error=str(exc))
        return _problem(request, 503, "The Import Manager cannot do that right now; try again.")


async def headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every response as it is sent (app.on_response_prepare): a raised redirect, the
    sign-in's with its cookie, too; and a streamed one (a file download), which sends its
    headers before its handler returns, so a middleware would add these too late."""
    _secure(request, response.headers)


def _secure(request: web.Request, headers: MutableMapping[str, str]) -> None:
    headers.update(_HEADERS)
    if not request.path.startswith("/static/"):
        headers["Cache-Control"] = "no-store"


@web.middleware
async def sessions(request: web.Request, handler: Handler) -> web.StreamResponse:
    ctx = context(request)
    set_session(None)
    cookie = request.cookies.get(auth.SESSION_COOKIE)
    token = ctx.signer.unsign(cookie) if cookie else None
    if token is not None:
        set_session(await asyncio.to_thread(_live_session, ctx, auth.token_hash(token)))
    return await handler(request)


def _live_session(ctx: WebContext, token_hash: str) -> users.Session | None:
    now = ctx.clock()
    with ctx.db.read() as conn:
        found = users.find_session(conn, token_hash)
    if found is None:
        return None
    if found.user.disabled or auth.session_expired(found, now, ctx.settings):
        with ctx.db.write() as conn:
            users.end_session(conn, token_hash)
        return None
    every = min(TOUCH_EVERY_SECONDS, ctx.settings.session_idle_minutes * 60 / 2)
    if now - found.last_seen_at >= timedelta(seconds=every):
        with ctx.db.write() as conn:
            users.touch_session(conn, token_hash, now)
    return found


@web.middleware
async def csrf(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every POST carries the session's token (a form field, or the API's header); the
    sign-in form, before there is a session, the token of its own cookie."""
    if (
        request.method in _SAFE_METHODS
        or request.get(bearer.BEARER)
        or request.match_info.handler in _CSRF_IN_BODY
    ):
        return await handler(request)
    if request.path == "/signout" and session(request) is None:
        # Signed out already (the session timed out): nothing to protect, and "this form
        # has expired" would be an odd answer to signing out.
        raise web.HTTPSeeOther("/signin")
    form = await request.post() if request.content_type.endswith("form-urlencoded") else {}
    given = request.headers.get(auth.CSRF_HEADER) or str(form.get(auth.CSRF_FIELD, "") or "")
    if auth.signed_out_form(request.path):
        expected = request.cookies.get(auth.SIGNIN_COOKIE, "")
    else:
        current = session(request)
        expected = current.csrf_token if current else ""
    if not expected or not auth.same_token(given, expected):
        log.warning("web request refused: no valid CSRF token", path=request.path)
        return _problem(
            request, 403, "This form has expired or did not come from this site: reload the page."
        )
    return await handler(request)


@web.middleware
async def disabled_tenants(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A disabled tenant's Import Manager is read-only for its administrators (a district
    that left, or is paused by its operator, decides nothing and changes no setting); its
    operator still acts. Signing out is never refused."""
    current = session(request)
    if (
        request.method in _SAFE_METHODS
        or request.path == "/signout"
        or current is None
        or current.user.operator
        or current.user.tenant_id is None
    ):
        return await handler(request)
    ctx = context(request)
    tenant = await asyncio.to_thread(_tenant_of, ctx, current.user.tenant_id)
    if tenant.disabled:
        return _problem(
            request, 403, f"{tenant.name} is disabled: its Import Manager is read-only until"
            " an operator enables it again. Nothing was changed.",
        )  # fmt: skip
    return await handler(request)


def _tenant_of(ctx: WebContext, tenant_id: int) -> tenants.Tenant:
    with ctx.db.read() as conn:
        return tenants.by_id(conn, tenant_id)


def create_app(ctx: WebContext) -> web.Application:
    app = web.Application(
        middlewares=[errors, sessions, bearer.bearer_tokens, csrf, disabled_tenants],
        client_max_size=MAX_BODY_BYTES,
    )
    app.on_response_prepare.append(headers)
    app[CONTEXT] = ctx
    ctx.templates.env.globals.update(
        changes_href=changes.figure_href, approval_lists=changes.approval_lists
    )
    _pages(app.router)
    _api(app.router)
    app.router.add_static("/static/", STATIC, append_version=True)
    return app


def _pages(r: web.UrlDispatcher) -> None:
    """The HTML pages, as docs/web.md lists them."""
    # Signing in and out, and the signed-out account pages (forgot password, the link).
    r.add_get("/", pages.home)
    r.add_get("/signin", signin.signin_form)
    r.add_post("/signin", signin.signin)
    r.add_post("/signout", signin.signout)
    r.add_get("/forgot", account.forgot_form)
    r.add_post("/forgot", account.forgot)
    r.add_get("/password/{token:[A-Za-z0-9_-]{1,100}}", account.password_form)
    r.add_post("/password/{token:[A-Za-z0-9_-]{1,100}}", account.set_password)
    # Imports: the list, one import, its problem report and files, its changes, decisions.
    r.add_get("/imports", pages.imports_list)
    r.add_get("/imports/{id:\\d+}", pages.import_page)
    r.add_get("/imports/{id:\\d+}/problems.csv", pages.problems_csv)
    r.add_get("/imports/{id:\\d+}/files/{name}", pages.uploaded_file)
    r.add_get("/imports/{id:\\d+}/changes", changes.changes_page)
    r.add_get("/imports/{id:\\d+}/changes.csv", changes.changes_csv)
    r.add_get("/imports/{id:\\d+}/{action:approve|reject}", pages.confirm)
    r.add_post("/imports/{id:\\d+}/{action:approve|reject}", pages.decide)
    # Undo: what it changes, then the undo (daemon/web/views/undoing.py).
    r.add_get("/imports/{id:\\d+}/undo", undoing.confirm_undo)
    r.add_post("/imports/{id:\\d+}/undo", undoing.undo_import)
    # The roster.
    r.add_get("/roster", roster.overview)
    r.add_get("/roster/{entity}", roster.list_page)
    r.add_get("/roster/{entity:schools}/{school}", roster.record_page)
    r.add_get("/roster/{entity:students|teachers|sections}/{school}/{id}", roster.record_page)
    # Setup: SFTP settings and password, addresses, thresholds, keys, grade rules.
    r.add_get("/setup", setup.choose)
    r.add_get("/tenants/{tenant}/setup", setup.show)
    r.add_get("/tenants/{tenant}/setup/password", setup.confirm_password)
    r.add_post("/tenants/{tenant}/setup/password", setup.rotate_password)
    r.add_post("/tenants/{tenant}/setup/emails", setup.save_emails)
    r.add_post("/tenants/{tenant}/setup/thresholds", setup.save_thresholds)
    r.add_post("/tenants/{tenant}/setup/keys", setup_keys.add_key)
    r.add_get("/tenants/{tenant}/setup/keys/remove", setup_keys.confirm_remove)
    r.add_post("/tenants/{tenant}/setup/keys/remove", setup_keys.remove_key)
    r.add_post("/tenants/{tenant}/setup/grade-rules", setup_rules.save_grade_rules)
    r.add_post("/tenants/{tenant}/setup/windows", setup_windows.add_window)
    r.add_post("/tenants/{tenant}/setup/windows/remove", setup_windows.remove_window)
    r.add_post("/tenants/{tenant}/setup/input-format", setup_format.save_input_format)
    # Choose Files: upload the five files, see the dry run, Process Import.
    r.add_get("/upload", upload.choose)
    r.add_get("/tenants/{tenant}/upload", upload.show)
    r.add_post("/tenants/{tenant}/upload", upload.check)
    r.add_post("/tenants/{tenant}/upload/process", upload.process)
    r.add_post("/tenants/{tenant}/upload/discard", upload.discard)
    # The operator's pages.
    r.add_get("/operator", operator.index)
    r.add_get("/operator/tenants", operator_tenants.tenants_page)
    r.add_post("/operator/tenants", operator_tenants.add_tenant)
    r.add_post("/operator/tenants/{tenant}/{action:disable|enable}", operator_tenants.set_disabled)
    r.add_get("/operator/users", operator_users.users_page)
    r.add_post("/operator/users/{name}/{action:disable|enable}", operator_users.set_disabled)
    r.add_get("/operator/outbox", operator_outbox.outbox_page)
    r.add_post("/operator/outbox/{id:\\d+}/retry", operator_outbox.retry)
    r.add_get("/operator/audit", operator_audit.audit_page)


def _api(r: web.UrlDispatcher) -> None:
    """/api/v1, as daemon/web/openapi.yaml describes it (the description to everyone)."""
    r.add_get(openapi.ROUTE, openapi.openapi)
    r.add_get("/api/v1/imports", api.list_imports)
    r.add_get("/api/v1/imports/{id:\\d+}", api.show_import)
    r.add_get("/api/v1/imports/{id:\\d+}/changes", changes.api_changes)
    r.add_post("/api/v1/imports/{id:\\d+}/{action:approve|reject}", api.decide)
    r.add_get("/api/v1/roster/{entity}", roster.api_list)
