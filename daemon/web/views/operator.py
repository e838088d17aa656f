"""What the operator's pages share: only an operator sees them (anyone else gets a 404, as for
a page that does not exist), their index, paging and the audit entry each change writes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from daemon.errors import NotFound
from daemon.store import users
from daemon.store.users import User
from daemon.web.context import WebContext, address, context
from daemon.web.views.pages import int_param, page_values, signed_in


def operator_only(request: web.Request) -> User:
    user = signed_in(request)
    if not user.operator:
        raise NotFound("an operator's page")
    return user


def before_id(request: web.Request) -> int | None:
    return int_param(request.query, "before")


def audit_operator(
    conn: Any, ctx: WebContext, request: web.Request, user: User, action: str, detail: str,
    tenant_id: int | None,
) -> None:  # fmt: skip
    users.audit(
        conn, user_name=user.name, action=action, now=ctx.clock(), tenant_id=tenant_id,
        detail=detail, address=address(request),
    )  # fmt: skip


async def index(request: web.Request) -> web.Response:
    operator_only(request)
    return context(request).templates.page("operator.html.j2", **page_values(request, "Operator"))
