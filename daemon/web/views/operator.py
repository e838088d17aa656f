"""What the operator's pages share: only an operator sees them (anyone else gets a 404, as for
a page that does not exist), their index, paging and the audit entry each change writes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from daemon.errors import NotFound
from daemon.store import users
from daemon.store.users import User
from daemon.web.context import WebContext, address, context, session
from daemon.web.views.pages import signed_in


def operator_only(request: web.Request) -> User:
    user = signed_in(request)
    if not user.operator:
        raise NotFound("an operator's page")
    return user


def common(request: web.Request, title: str) -> dict[str, Any]:
    current = session(request)
    assert current is not None
    return {"title": title, "user": current.user, "csrf_token": current.csrf_token}


def before_id(request: web.Request) -> int | None:
    text = request.query.get("before", "")
    return int(text) if text.isdigit() else None


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
    return context(request).templates.page("operator.html.j2", **common(request, "Operator"))
