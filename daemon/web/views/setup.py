"""The Setup page: what a district types into its SIS, rotating its SFTP password, its
notification addresses and its thresholds — each checked as the CLI checks it, each audited."""

from __future__ import annotations

import asyncio
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from daemon.clever.values import checked_emails
from daemon.errors import ConfigError, NotFound
from daemon.hostkeyfiles import host_key_fingerprints
from daemon.passwords import generate_password, hash_password
from daemon.roster.tenant import TenantSettings
from daemon.store import tenants, users
from daemon.store.tenants import Tenant
from daemon.store.users import User
from daemon.web.context import SftpDetails, WebContext, address, context, session
from daemon.web.views.pages import signed_in

UPLOAD_DIRECTORY = "/upload"  # every tenant's jail has it (sftp/jail.py)
MAX_EMAILS = 50  # a form's list of addresses; more is a mistake, not a district
# The thresholds the page edits: (setting, label, type), checked by TenantSettings.check.
THRESHOLDS = (
    ("max_deactivate_percent", "Max deactivate %", float),
    ("max_update_percent", "Max update %", float),
    ("threshold_floor", "Threshold floor", int),
    ("max_row_errors", "Max row errors", int),
)
_SPLIT = re.compile(r"[\s,;]+")


@dataclass
class SetupForm:
    """What the page shows besides the tenant: a result, and what a refused form said."""

    result: str = ""
    password: str = ""  # a new password, shown this once
    emails_error: str = ""
    emails_text: str | None = None
    threshold_errors: dict[str, str] = field(default_factory=dict)
    threshold_values: dict[str, str] = field(default_factory=dict)


def _visible_tenant(conn: Any, user: User, name: str) -> Tenant:
    """Another tenant's Setup is not found, exactly as one that does not exist."""
    found = tenants.find(conn, name)
    if found is None or not (user.operator or user.tenant_id == found.id):
        raise NotFound(f"no tenant {name!r}")
    return found


def _tenant(ctx: WebContext, user: User, name: str) -> Tenant:
    with ctx.db.read() as conn:
        return _visible_tenant(conn, user, name)


async def _render(
    request: web.Request, tenant: Tenant, form: SetupForm, status: int = 200
) -> web.Response:
    ctx = context(request)
    sftp = await asyncio.to_thread(_sftp_lines, ctx.sftp, tenant)  # a DNS lookup, files
    current = session(request)
    assert current is not None
    return ctx.templates.page(
        "setup.html.j2", status=status, title=f"Setup of {tenant.name}", user=current.user,
        csrf_token=current.csrf_token, tenant=tenant, sftp=sftp,
        thresholds=_threshold_fields(tenant.settings, form), form=form,
        emails_text=form.emails_text if form.emails_text is not None else "\n".join(tenant.emails),
    )  # fmt: skip


def _sftp_lines(sftp: SftpDetails, tenant: Tenant) -> dict[str, Any]:
    return {
        "host": sftp.host(),
        "port": sftp.listening_port(),
        "directory": UPLOAD_DIRECTORY,
        "username": tenant.name,
        "fingerprints": host_key_fingerprints(sftp.host_keys),
        "password": tenant.password_hash is not None,
    }


def _threshold_fields(settings: TenantSettings, form: SetupForm) -> list[dict[str, str]]:
    return [
        {
            "name": name,
            "label": label,
            "value": form.threshold_values.get(name, _shown(getattr(settings, name))),
            "error": form.threshold_errors.get(name, ""),
        }
        for name, label, kind in THRESHOLDS
    ]


def _shown(value: float | int) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


async def choose(request: web.Request) -> web.Response:
    """`/setup`: a district's own Setup; an operator's for the tenant chosen, else a list."""
    user = signed_in(request)
    ctx = context(request)
    if not user.operator:
        raise web.HTTPSeeOther(f"/tenants/{user.tenant}/setup")
    chosen = request.query.get("tenant", "")
    if chosen:
        raise web.HTTPSeeOther(f"/tenants/{urllib.parse.quote(chosen, safe='')}/setup")
    everyone = await asyncio.to_thread(_all_tenants, ctx)
    current = session(request)
    assert current is not None
    return ctx.templates.page(
        "setup_choose.html.j2", title="Setup", user=user, csrf_token=current.csrf_token,
        tenants=everyone,
    )  # fmt: skip


def _all_tenants(ctx: WebContext) -> list[Tenant]:
    with ctx.db.read() as conn:
        return tenants.list_all(conn)


async def show(request: web.Request) -> web.Response:
    user = signed_in(request)
    tenant = await asyncio.to_thread(_tenant, context(request), user, request.match_info["tenant"])
    return await _render(request, tenant, SetupForm())


async def confirm_password(request: web.Request) -> web.Response:
    user = signed_in(request)
    ctx = context(request)
    tenant = await asyncio.to_thread(_tenant, ctx, user, request.match_info["tenant"])
    current = session(request)
    assert current is not None
    return ctx.templates.page(
        "setup_password.html.j2", title=f"Rotate the SFTP password of {tenant.name}",
        user=user, csrf_token=current.csrf_token, tenant=tenant,
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
            tenant = _visible_tenant(conn, user, name)
            tenants.update(conn, tenant.name, password_hash=hashed)
            _audit(conn, ctx, request, user, tenant, "sftp_password", "a new SFTP password")
            return tenants.get(conn, tenant.name)

    tenant = await asyncio.to_thread(store)
    form = SetupForm(
        result="The SFTP password was changed: the old one no longer works.", password=password
    )
    return await _render(request, tenant, form)


async def save_emails(request: web.Request) -> web.Response:
    user = signed_in(request)
    ctx = context(request)
    name = request.match_info["tenant"]
    text = str((await request.post()).get("emails", "") or "")
    given = [e for e in _SPLIT.split(text) if e]
    error = ""
    emails: list[str] = []
    try:
        if not given:
            raise ConfigError("give at least one address")
        if len(given) > MAX_EMAILS:
            raise ConfigError(f"give at most {MAX_EMAILS} addresses")
        emails = checked_emails(given)
    except ConfigError as exc:
        error = str(exc)

    def store() -> Tenant:
        with ctx.db.write() as conn:
            tenant = _visible_tenant(conn, user, name)
            if error:
                return tenant
            tenants.update(conn, tenant.name, emails=emails)
            _audit(conn, ctx, request, user, tenant, "emails", "emails: " + ", ".join(emails))
            return tenants.get(conn, tenant.name)

    tenant = await asyncio.to_thread(store)
    if error:
        form = SetupForm(emails_error=f"Notification addresses: {error}", emails_text=text)
        return await _render(request, tenant, form, status=400)
    saved = SetupForm(result="The notification addresses were saved.")
    return await _render(request, tenant, saved)


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
    return changes, errors


async def save_thresholds(request: web.Request) -> web.Response:
    user = signed_in(request)
    ctx = context(request)
    name = request.match_info["tenant"]
    form = await request.post()
    posted = {key: str(form.get(key, "") or "") for key, _, _ in THRESHOLDS}

    def store() -> tuple[Tenant, dict[str, str], dict[str, Any]]:
        with ctx.db.write() as conn:
            tenant = _visible_tenant(conn, user, name)
            changes, errors = _threshold_changes(tenant.settings, posted)
            if errors or not changes:
                return tenant, errors, changes
            settings = tenant.settings.updated(**changes)
            tenants.update(conn, tenant.name, settings=settings)
            detail = "; ".join(
                f"{key}: {_shown(getattr(tenant.settings, key))} → {_shown(value)}"
                for key, value in changes.items()
            )
            _audit(conn, ctx, request, user, tenant, "thresholds", detail)
            return tenants.get(conn, tenant.name), errors, changes

    tenant, errors, changes = await asyncio.to_thread(store)
    if errors:
        refused = SetupForm(threshold_errors=errors, threshold_values=posted)
        return await _render(request, tenant, refused, status=400)
    said = "The thresholds were saved." if changes else "The thresholds were already so."
    return await _render(request, tenant, SetupForm(result=said))


def _audit(
    conn: Any, ctx: WebContext, request: web.Request, user: User, tenant: Tenant, action: str,
    detail: str,
) -> None:  # fmt: skip
    users.audit(
        conn, user_name=user.name, action=action, now=ctx.clock(), tenant_id=tenant.id,
        detail=detail, address=address(request),
    )  # fmt: skip
