"""The operator's Tenants page: every tenant with its state, last import and paused count;
adding one as `rosterdrop tenant add` does (its generated SFTP password shown once); disabling
and enabling, as `tenant disable/enable` (the SFTP server reads the tenant at every login)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web

from daemon.errors import ConfigError, Conflict
from daemon.passwords import generate_password, hash_password
from daemon.store import overview, tenants, windows
from daemon.store.overview import TenantSummary
from daemon.web.context import WebContext, context
from daemon.web.views.operator import audit_operator, operator_only
from daemon.web.views.pages import page_values
from daemon.web.views.setup import form_emails
from daemon.windowclock import window_now

TENANTS_PAGE_SIZE = 100  # tenants per page, by name
UPLOAD_FOLDER_MODE = 0o750  # as `tenant add` makes it


@dataclass
class TenantsForm:
    result: str = ""
    password: str = ""  # the new tenant's SFTP password, shown this once
    added: str = ""
    name_error: str = ""
    emails_error: str = ""
    name: str = ""
    emails: str = ""


def _page(ctx: WebContext, after: str | None) -> list[TenantSummary]:
    with ctx.db.read() as conn:
        return overview.tenant_summaries(conn, limit=TENANTS_PAGE_SIZE + 1, after=after)


async def _render(request: web.Request, form: TenantsForm, status: int = 200) -> web.Response:
    ctx = context(request)
    after = request.query.get("after") or None
    found = await asyncio.to_thread(_page, ctx, after)
    shown = found[:TENANTS_PAGE_SIZE]
    more = shown[-1].tenant.name if len(found) > TENANTS_PAGE_SIZE else None
    return ctx.templates.page(
        "operator_tenants.html.j2", status=status, **page_values(request, "Tenants"),
        summaries=shown, next_after=more, form=form,
    )  # fmt: skip


async def tenants_page(request: web.Request) -> web.Response:
    operator_only(request)
    return await _render(request, TenantsForm())


async def add_tenant(request: web.Request) -> web.Response:
    user = operator_only(request)
    ctx = context(request)
    posted = await request.post()
    name = str(posted.get("name", "") or "").strip()
    text = str(posted.get("emails", "") or "")
    form = TenantsForm(name=name, emails=text)
    emails: list[str] = []
    try:
        tenants.check_name(name)
    except ConfigError as exc:
        form.name_error = f"Tenant name: {exc}"
    try:
        emails = form_emails(text, required=False)
    except ConfigError as exc:
        form.emails_error = f"Notification addresses: {exc}"
    if form.name_error or form.emails_error:
        return await _render(request, form, status=400)
    password = generate_password()
    hashed = await asyncio.to_thread(hash_password, password)

    def store() -> str:
        with ctx.db.write() as conn:
            try:
                added = tenants.add(
                    conn, name, emails=emails, now=ctx.clock(), password_hash=hashed
                )
            except Conflict as exc:
                return str(exc)
            detail = "emails: " + (", ".join(emails) or "none")
            audit_operator(conn, ctx, request, user, "tenant_added", detail, added.id)
            default = windows.add_yearly(
                conn, added.id, ctx.windows.new_tenant, zone=ctx.windows.zone(),
                now=window_now(ctx.clock), by=user.name,
            )  # fmt: skip
            if default is not None:  # [windows] new_tenant, as `tenant add` adds it
                audit_operator(
                    conn, ctx, request, user, "pause_window_added", default.described(), added.id
                )
        # Its /upload folder, as `tenant add` makes it, so its first login finds it.
        ctx.pipeline.paths.upload_dir(name).mkdir(
            parents=True, exist_ok=True, mode=UPLOAD_FOLDER_MODE
        )
        return ""

    refused = await asyncio.to_thread(store)
    if refused:
        form.name_error = f"Tenant name: {refused}"
        return await _render(request, form, status=400)
    done = TenantsForm(result=f"Tenant {name} was added.", password=password, added=name)
    return await _render(request, done)


async def set_disabled(request: web.Request) -> web.Response:
    user = operator_only(request)
    ctx = context(request)
    name = request.match_info["tenant"]
    disabled = request.match_info["action"] == "disable"

    def store() -> None:
        with ctx.db.write() as conn:
            tenant = tenants.get(conn, name)
            if tenant.disabled == disabled:
                return
            tenants.update(conn, tenant.name, disabled=disabled)
            action = "tenant_disabled" if disabled else "tenant_enabled"
            audit_operator(conn, ctx, request, user, action, "", tenant.id)

    await asyncio.to_thread(store)
    said = (
        f"Tenant {name} is disabled: its SFTP logins are refused from the next one."
        if disabled
        else f"Tenant {name} is enabled: its SFTP logins are accepted again."
    )
    return await _render(request, TenantsForm(result=said))
