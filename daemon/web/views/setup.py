"""The Setup page's first forms: what a district types into its SIS, rotating its SFTP
password, its notification addresses and its thresholds — each checked as the CLI checks it,
each audited. Its public keys and grade rules have modules of their own."""

from __future__ import annotations

import asyncio
import re
import urllib.parse
from typing import Any

from aiohttp import web

from daemon.clever.values import checked_emails
from daemon.errors import ConfigError
from daemon.passwords import generate_password, hash_password
from daemon.roster.tenant import TenantSettings
from daemon.store import tenants
from daemon.store.tenants import Tenant
from daemon.web.context import context
from daemon.web.views.pages import page_values, signed_in, tenant_chooser
from daemon.web.views.setup_page import (
    PER_SCHOOL,
    PER_SCHOOL_SHOWN,
    THRESHOLDS,
    SetupForm,
    audit_change,
    render,
    shown_value,
    tenant_for,
    visible_tenant,
)

MAX_EMAILS = 50  # a form's list of addresses; more is a mistake, not a district
EMAIL_SEPARATORS = re.compile(r"[\s,;]+")  # one per line, or commas, or spaces


async def choose(request: web.Request) -> web.Response:
    """`/setup`: a district's own Setup; an operator's for the tenant chosen, else a list."""
    user = signed_in(request)
    if not user.operator:
        raise web.HTTPSeeOther(f"/tenants/{user.tenant}/setup")
    chosen = request.query.get("tenant", "")
    if chosen:
        raise web.HTTPSeeOther(f"/tenants/{urllib.parse.quote(chosen, safe='')}/setup")
    return await tenant_chooser(
        request, title="Setup",
        intro="Choose the tenant whose SFTP settings, addresses and thresholds to see.",
        link=lambda t: f"/tenants/{urllib.parse.quote(t.name, safe='')}/setup",
    )  # fmt: skip


async def show(request: web.Request) -> web.Response:
    user = signed_in(request)
    tenant = await asyncio.to_thread(
        tenant_for, context(request), user, request.match_info["tenant"]
    )
    return await render(request, tenant, SetupForm())


async def confirm_password(request: web.Request) -> web.Response:
    user = signed_in(request)
    ctx = context(request)
    tenant = await asyncio.to_thread(tenant_for, ctx, user, request.match_info["tenant"])
    return ctx.templates.page(
        "setup_password.html.j2",
        **page_values(request, f"Rotate the SFTP password of {tenant.name}"), tenant=tenant,
    )  # fmt: skip


async def rotate_password(request: web.Request) -> web.Response:
    """A new generated password, stored hashed: the SFTP server reads the account at every
    login, so the old password stops working at the next one."""
    user = signed_in(request)
    ctx = context(request)
    name = request.match_info["tenant"]
    password = generate_password()
    hashed = await asyncio.to_thread(hash_password, password)

    def store() -> Tenant:
        with ctx.db.write() as conn:
            tenant = visible_tenant(conn, user, name)
            tenants.update(conn, tenant.name, password_hash=hashed)
            audit_change(conn, ctx, request, user, tenant, "sftp_password", "a new SFTP password")
            return tenants.get(conn, tenant.name)

    tenant = await asyncio.to_thread(store)
    form = SetupForm(
        result="The SFTP password was changed: the old one no longer works.", password=password
    )
    return await render(request, tenant, form)


def form_emails(text: str, *, required: bool) -> list[str]:
    """A form's addresses (1 to MAX_EMAILS of them, or none when not `required`), checked and
    lower-cased as `tenant set --email` does; raises ConfigError naming the bad ones."""
    given = [e for e in EMAIL_SEPARATORS.split(text) if e]
    if required and not given:
        raise ConfigError("give at least one address")
    if len(given) > MAX_EMAILS:
        raise ConfigError(f"give at most {MAX_EMAILS} addresses")
    return checked_emails(given)


async def save_emails(request: web.Request) -> web.Response:
    user = signed_in(request)
    ctx = context(request)
    name = request.match_info["tenant"]
    text = str((await request.post()).get("emails", "") or "")
    error = ""
    emails: list[str] = []
    try:
        emails = form_emails(text, required=True)
    except ConfigError as exc:
        error = str(exc)

    def store() -> Tenant:
        with ctx.db.write() as conn:
            tenant = visible_tenant(conn, user, name)
            if error:
                return tenant
            tenants.update(conn, tenant.name, emails=emails)
            audit_change(conn, ctx, request, user, tenant, "emails", "emails: " + ", ".join(emails))
            return tenants.get(conn, tenant.name)

    tenant = await asyncio.to_thread(store)
    if error:
        form = SetupForm(emails_error=f"Notification addresses: {error}", emails_text=text)
        return await render(request, tenant, form, status=400)
    saved = SetupForm(result="The notification addresses were saved.")
    return await render(request, tenant, saved)


def _threshold_changes(
    current: TenantSettings, posted: dict[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The changed thresholds and, per field, what is wrong with it (TenantSettings.check's
    own words, one field at a time so that each error names its field)."""
    changes: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, label, kind in THRESHOLDS:
        raw = posted.get(name, "").strip()
        try:
            value = kind(raw)
        except ValueError:
            wanted = "a number" if kind is float else "a whole number"
            errors[name] = f"{label}: {raw!r} is not {wanted}"
            continue
        try:
            current.updated(**{name: value})
        except ConfigError as exc:
            errors[name] = f"{label}: {exc}"
            continue
        if value != getattr(current, name):
            changes[name] = value
    # An unticked box sends nothing: only a form that showed it (its marker) turns it off.
    per_school = posted.get(PER_SCHOOL, "") != ""
    if posted.get(PER_SCHOOL_SHOWN) and per_school != current.per_school:
        changes[PER_SCHOOL] = per_school
    return changes, errors


async def save_thresholds(request: web.Request) -> web.Response:
    user = signed_in(request)
    ctx = context(request)
    name = request.match_info["tenant"]
    form = await request.post()
    posted = {key: str(form.get(key, "") or "") for key, _, _ in THRESHOLDS}
    for key in (PER_SCHOOL, PER_SCHOOL_SHOWN):
        posted[key] = str(form.get(key, "") or "")

    def store() -> tuple[Tenant, dict[str, str], dict[str, Any]]:
        with ctx.db.write() as conn:
            tenant = visible_tenant(conn, user, name)
            changes, errors = _threshold_changes(tenant.settings, posted)
            if errors or not changes:
                return tenant, errors, changes
            settings = tenant.settings.updated(**changes)
            tenants.update(conn, tenant.name, settings=settings)
            detail = "; ".join(
                f"{key}: {shown_value(getattr(tenant.settings, key))} → {shown_value(value)}"
                for key, value in changes.items()
            )
            audit_change(conn, ctx, request, user, tenant, "thresholds", detail)
            return tenants.get(conn, tenant.name), errors, changes

    tenant, errors, changes = await asyncio.to_thread(store)
    if errors:
        refused = SetupForm(threshold_errors=errors, threshold_values=posted)
        return await render(request, tenant, refused, status=400)
    said = "The thresholds were saved." if changes else "The thresholds were already so."
    return await render(request, tenant, SetupForm(result=said))
