"""The Setup page's SSH public keys: add one (checked by the SFTP package's own check, as
`tenant add-key` checks it), remove one after a confirmation; the SFTP server reads the keys
at every login, so the change counts from the next one. Each change is audited."""

from __future__ import annotations

import asyncio

from aiohttp import web

from daemon import publickeys
from daemon.errors import ConfigError, NotFound
from daemon.store import tenants
from daemon.store.tenants import Tenant
from daemon.web.context import context
from daemon.web.views.pages import page_values, signed_in
from daemon.web.views.setup_page import SetupForm, audit_change, render, tenant_for, visible_tenant

KEY_LABEL = "Public key"


async def add_key(request: web.Request) -> web.Response:
    user = signed_in(request)
    ctx = context(request)
    name = request.match_info["tenant"]
    text = str((await request.post()).get("key", "") or "")
    error = ""
    line = ""
    try:
        line = ctx.sftp.public_key_line(text)
    except ValueError as exc:
        error = str(exc)

    def store() -> tuple[Tenant, str]:
        with ctx.db.write() as conn:
            tenant = visible_tenant(conn, user, name)
            if error:
                return tenant, error
            try:
                keys = publickeys.with_key(tenant.authorized_keys, line)
            except ConfigError as exc:
                return tenant, str(exc)
            if keys == tenant.authorized_keys:
                return tenant, ""
            tenants.update(conn, tenant.name, authorized_keys=keys)
            key = publickeys.read_key(line)
            detail = f"{key.kind} {key.fingerprint} {key.comment}".strip()
            audit_change(conn, ctx, request, user, tenant, "public_key_added", detail)
            return tenants.get(conn, tenant.name), ""

    tenant, refused = await asyncio.to_thread(store)
    if refused:
        form = SetupForm(key_error=f"{KEY_LABEL}: {refused}", key_text=text)
        return await render(request, tenant, form, status=400)
    said = "The key was added: it logs in from the next SFTP login."
    return await render(request, tenant, SetupForm(result=said))


def _key_of(tenant: Tenant, fingerprint: str) -> publickeys.PublicKey:
    for key in publickeys.read_keys(tenant.authorized_keys):
        if key.fingerprint == fingerprint:
            return key
    raise NotFound(f"no key {fingerprint} for {tenant.name}")


async def confirm_remove(request: web.Request) -> web.Response:
    user = signed_in(request)
    ctx = context(request)
    tenant = await asyncio.to_thread(tenant_for, ctx, user, request.match_info["tenant"])
    key = _key_of(tenant, request.query.get("fingerprint", ""))
    return ctx.templates.page(
        "setup_key_remove.html.j2", **page_values(request, f"Remove a public key of {tenant.name}"),
        tenant=tenant, key=key,
    )  # fmt: skip


async def remove_key(request: web.Request) -> web.Response:
    user = signed_in(request)
    ctx = context(request)
    name = request.match_info["tenant"]
    fingerprint = str((await request.post()).get("fingerprint", "") or "")

    def store() -> Tenant:
        with ctx.db.write() as conn:
            tenant = visible_tenant(conn, user, name)
            key = _key_of(tenant, fingerprint)
            keys = publickeys.without_key(tenant.authorized_keys, fingerprint)
            tenants.update(conn, tenant.name, authorized_keys=keys)
            detail = f"{key.kind} {key.fingerprint} {key.comment}".strip()
            audit_change(conn, ctx, request, user, tenant, "public_key_removed", detail)
            return tenants.get(conn, tenant.name)

    tenant = await asyncio.to_thread(store)
    said = "The key was removed: it no longer logs in, from the next SFTP login."
    return await render(request, tenant, SetupForm(result=said))
