"""The Setup page's grade replace rules: FROM=TO lines, each checked as `tenant set
--grade-rule` checks it (roster.tenant.grade_rule, then TenantSettings.check), and whether the
common rules apply too. Any error changes nothing; a change is audited."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from daemon.errors import ConfigError
from daemon.roster.tenant import grade_rule
from daemon.store import tenants
from daemon.store.tenants import Tenant
from daemon.web.context import context
from daemon.web.views.pages import signed_in
from daemon.web.views.setup_page import SetupForm, audit_change, render, visible_tenant

RULES_LABEL = "Grade replace rules"


def parsed_rules(text: str) -> dict[str, str]:
    """The rules of the form's lines (a later line wins over an earlier one, as repeated
    --grade-rule options do); raises ConfigError naming the line."""
    rules: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            source, target = grade_rule(line)
        except ConfigError as exc:
            raise ConfigError(f"line {number}: {exc}") from None
        rules[source] = target
    return rules


def _described(rules: dict[str, str], common: bool) -> str:
    listed = ", ".join(f"{source} → {target}" for source, target in rules.items()) or "none"
    return f"rules: {listed}; common rules {'on' if common else 'off'}"


async def save_grade_rules(request: web.Request) -> web.Response:
    user = signed_in(request)
    ctx = context(request)
    name = request.match_info["tenant"]
    form = await request.post()
    text = str(form.get("grade_rules", "") or "")
    common = form.get("common_grade_rules") is not None

    def store() -> tuple[Tenant, str, bool]:
        with ctx.db.write() as conn:
            tenant = visible_tenant(conn, user, name)
            changes: dict[str, Any] = {"common_grade_rules": common}
            try:
                changes["grade_rules"] = parsed_rules(text)
                settings = tenant.settings.updated(**changes)
            except ConfigError as exc:
                return tenant, str(exc), False
            if settings == tenant.settings:
                return tenant, "", False
            tenants.update(conn, tenant.name, settings=settings)
            detail = _described(dict(settings.grade_rules), common)
            audit_change(conn, ctx, request, user, tenant, "grade_rules", detail)
            return tenants.get(conn, tenant.name), "", True

    tenant, error, changed = await asyncio.to_thread(store)
    if error:
        refused = SetupForm(
            rules_error=f"{RULES_LABEL}: {error}", rules_text=text, rules_common=common
        )
        return await render(request, tenant, refused, status=400)
    said = "The grade rules were saved." if changed else "The grade rules were already so."
    return await render(request, tenant, SetupForm(result=said))
