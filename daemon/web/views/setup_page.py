"""The Setup page as a whole: the tenant it is for (another tenant's is not found), what a
refused form said, the page itself (SFTP settings, keys, addresses, thresholds, grade rules,
the tenant's audit log), and the audit entry every change writes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from daemon import publickeys
from daemon.clever.values import COMMON_GRADE_RULES
from daemon.errors import ConfigError, NotFound
from daemon.hostkeyfiles import host_key_fingerprints
from daemon.roster.tenant import TenantSettings
from daemon.store import tenants, users, windows
from daemon.store.tenants import Tenant
from daemon.store.users import User
from daemon.web.context import SftpDetails, WebContext, address, context
from daemon.web.views.pages import int_param, page_values
from daemon.windowclock import window_now

UPLOAD_DIRECTORY = "/upload"  # every tenant's jail has it (sftp/jail.py)
SETUP_AUDIT_PAGE_SIZE = 20  # audit entries per page of the Setup page
# The thresholds the page edits: (setting, label, type), checked by TenantSettings.check.
THRESHOLDS = (
    ("max_deactivate_percent", "Max deactivate %", float),
    ("max_update_percent", "Max update %", float),
    ("threshold_floor", "Threshold floor", int),
    ("max_row_errors", "Max row errors", int),
)
PER_SCHOOL = "per_school"  # the thresholds form's checkbox: count deactivations per school
PER_SCHOOL_SHOWN = "per_school_shown"  # the form had the box (unticked, it sends nothing)


# The upload format's choices (the values are TenantSettings.input_format's; setup_format).
FORMAT_CHOICES = {
    "auto": "Tell from the files (a manifest.csv, or a .zip without Clever's files, is OneRoster)",
    "clever": "Clever: the five files",
    "oneroster": "OneRoster 1.1 or 1.2 CSV (loose files or one .zip)",
}


@dataclass
class SetupForm:
    """What the page shows besides the tenant: a result, and what a refused form said."""

    result: str = ""
    password: str = ""  # a new password, shown this once
    emails_error: str = ""
    emails_text: str | None = None
    threshold_errors: dict[str, str] = field(default_factory=dict)
    threshold_values: dict[str, str] = field(default_factory=dict)
    key_error: str = ""
    key_text: str = ""
    rules_error: str = ""
    rules_text: str | None = None
    rules_common: bool | None = None
    window_error: str = ""
    window_values: dict[str, str] = field(default_factory=dict)


def visible_tenant(conn: Any, user: User, name: str) -> Tenant:
    """Another tenant's Setup is not found, exactly as one that does not exist."""
    found = tenants.find(conn, name)
    if found is None or not (user.operator or user.tenant_id == found.id):
        raise NotFound(f"no tenant {name!r}")
    return found


def tenant_for(ctx: WebContext, user: User, name: str) -> Tenant:
    with ctx.db.read() as conn:
        return visible_tenant(conn, user, name)


async def render(
    request: web.Request, tenant: Tenant, form: SetupForm, status: int = 200
) -> web.Response:
    ctx = context(request)
    sftp = await asyncio.to_thread(_sftp_lines, ctx.sftp, tenant)  # a DNS lookup, files
    before = int_param(request.query, "audit_before")
    audit = await asyncio.to_thread(_audit_page, ctx, tenant, before)
    pause_windows = await asyncio.to_thread(window_rows, ctx, tenant)
    rules = _rules_field(tenant.settings, form)
    older = audit[SETUP_AUDIT_PAGE_SIZE - 1].id if len(audit) > SETUP_AUDIT_PAGE_SIZE else None
    return ctx.templates.page(
        "setup.html.j2", status=status, **page_values(request, f"Setup of {tenant.name}"),
        tenant=tenant, sftp=sftp, format_choices=FORMAT_CHOICES,
        thresholds=_threshold_fields(tenant.settings, form), form=form,
        per_school=(
            form.threshold_values.get(PER_SCHOOL, "") != ""
            if form.threshold_values.get(PER_SCHOOL_SHOWN) else tenant.settings.per_school
        ),
        emails_text=form.emails_text if form.emails_text is not None else "\n".join(tenant.emails),
        keys=_keys(tenant), rules=rules, audit=audit[:SETUP_AUDIT_PAGE_SIZE],
        audit_older=older, pause_windows=pause_windows, zone=ctx.windows.timezone,
    )  # fmt: skip


def window_rows(ctx: WebContext, tenant: Tenant) -> list[dict[str, Any]]:
    """The tenant's pause windows as the page lists them, with what each is doing now."""
    now = window_now(ctx.clock)
    with ctx.db.read() as conn:
        found = windows.list_for(conn, tenant.id)
    return [{"window": w, "state": w.state(now)} for w in found]


def _audit_page(ctx: WebContext, tenant: Tenant, before: int | None) -> list[users.AuditEntry]:
    """One page of the tenant's audit log, newest first, and one more to know if there is more."""
    with ctx.db.read() as conn:
        return users.audit_entries(
            conn, tenant_id=tenant.id, before=before, limit=SETUP_AUDIT_PAGE_SIZE + 1
        )


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
            "value": form.threshold_values.get(name, shown_value(getattr(settings, name))),
            "error": form.threshold_errors.get(name, ""),
        }
        for name, label, kind in THRESHOLDS
    ]


def shown_value(value: float | int) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _keys(tenant: Tenant) -> list[publickeys.PublicKey | str]:
    """The tenant's keys; a line that is no key (written by hand) is shown as such."""
    shown: list[publickeys.PublicKey | str] = []
    for line in tenant.authorized_keys.splitlines():
        if line.strip():
            try:
                shown.append(publickeys.read_key(line.strip()))
            except ConfigError:
                shown.append(line.strip())
    return shown


def _rules_field(settings: TenantSettings, form: SetupForm) -> dict[str, Any]:
    text = form.rules_text
    if text is None:
        text = "\n".join(f"{source}={target}" for source, target in settings.grade_rules.items())
    common = settings.common_grade_rules if form.rules_common is None else form.rules_common
    return {"text": text, "common": common, "common_rules": COMMON_GRADE_RULES}


def audit_change(
    conn: Any, ctx: WebContext, request: web.Request, user: User, tenant: Tenant, action: str,
    detail: str,
) -> None:  # fmt: skip
    users.audit(
        conn, user_name=user.name, action=action, now=ctx.clock(), tenant_id=tenant.id,
        detail=detail, address=address(request),
    )  # fmt: skip
