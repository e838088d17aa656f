"""The checks' pages: a tenant's checks (sets dropped in /check, never imported), one
check's report as /check/results has it, and its problem report as CSV."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from daemon import folders
from daemon.check import report
from daemon.errors import NotFound
from daemon.notify.figures import ENTITY_LABELS
from daemon.notify.problem_list import ProblemLine, problem_lines
from daemon.roster.problems import Problem
from daemon.store import checks, tenants
from daemon.store.checks import CheckRecord
from daemon.store.database import Database
from daemon.store.tenants import Tenant
from daemon.store.users import User
from daemon.web.auth import can_see_tenant, visible_tenant_ids
from daemon.web.context import context
from daemon.web.views.data import the_tenant
from daemon.web.views.pages import int_param, page_values, report_download, signed_in

CHECKS_PAGE_SIZE = 50  # checks per page of the list (keyset: ?before=ID)
CHECK_PROBLEM_LINES = 200  # grouped problem lines a check's page shows; the CSV has all


@dataclass(frozen=True)
class ChecksPage:
    records: list[CheckRecord]
    next_before: int | None
    tenants: list[Tenant]  # an operator's switcher; empty for a district administrator
    tenant: str | None


@dataclass(frozen=True)
class CheckView:
    record: CheckRecord
    answer: dict[str, Any]
    files: list[dict[str, Any]] = field(default_factory=list)
    entities: list[dict[str, Any]] = field(default_factory=list)
    problems: list[ProblemLine] = field(default_factory=list)
    problems_more: int = 0
    has_csv: bool = False


def checks_page(db: Database, user: User, *, tenant: str | None, before: int | None) -> ChecksPage:
    chosen = the_tenant(db, user, tenant)
    tenant_id = chosen.id if chosen else visible_tenant_ids(user)
    with db.read() as conn:
        records = checks.list_recent(
            conn, tenant_id=tenant_id, before=before, limit=CHECKS_PAGE_SIZE + 1
        )
        switcher = tenants.list_all(conn) if user.operator else []
    more = len(records) > CHECKS_PAGE_SIZE
    records = records[:CHECKS_PAGE_SIZE]
    return ChecksPage(
        records, records[-1].id if more else None, switcher, chosen.name if chosen else None
    )


def visible_check(db: Database, user: User, check_id: int) -> CheckRecord:
    """Another tenant's check is not found, exactly as one that does not exist."""
    with db.read() as conn:
        record = checks.get(conn, check_id)
    if not can_see_tenant(user, record.tenant_id):
        raise NotFound(f"no check #{check_id}")
    return record


def check_view(db: Database, user: User, check_id: int) -> CheckView:
    record = visible_check(db, user, check_id)
    answer = record.result or {}
    if answer.get("state") != "checked":
        return CheckView(record, answer)
    seen = {f["file"]: f for f in answer["files"]}
    entities = [
        {"name": ENTITY_LABELS.get(name, name), **changes}
        for name, changes in answer["entities"].items()
    ]
    lines = problem_lines([Problem.from_dict(p) for p in answer["problems"]])
    return CheckView(
        record, answer,
        files=[seen.get(name, {"file": name}) for name in report.file_names(answer)],
        entities=entities,
        problems=lines[:CHECK_PROBLEM_LINES],
        problems_more=max(0, len(lines) - CHECK_PROBLEM_LINES),
        has_csv=_report_csv(record) is not None,
    )  # fmt: skip


def _report_csv(record: CheckRecord) -> Path | None:
    if record.files_dir is None:
        return None  # expired from the archive under retention_days
    path = Path(record.files_dir) / folders.PROBLEMS
    return path if path.exists() else None


def _check_id(request: web.Request) -> int:
    check_id = int(request.match_info["id"])
    if check_id > 2**63 - 1:
        raise NotFound(f"no check #{check_id}")
    return check_id


async def checks_list(request: web.Request) -> web.Response:
    user = signed_in(request)
    ctx = context(request)
    page = await asyncio.to_thread(
        checks_page, ctx.db, user, tenant=request.query.get("tenant") or None,
        before=int_param(request.query, "before"),
    )  # fmt: skip
    return ctx.templates.page("checks.html.j2", **page_values(request, "Checks"), page=page)


async def check_page(request: web.Request) -> web.Response:
    user = signed_in(request)
    ctx = context(request)
    view = await asyncio.to_thread(check_view, ctx.db, user, _check_id(request))
    return ctx.templates.page(
        "check.html.j2", **page_values(request, f"Check #{view.record.id}"), view=view
    )


async def check_problems_csv(request: web.Request) -> web.Response:
    user = signed_in(request)
    ctx = context(request)
    record = await asyncio.to_thread(visible_check, ctx.db, user, _check_id(request))
    path = await asyncio.to_thread(_report_csv, record)
    filename = f"{record.results_name or f'check-{record.id}'}-problems.csv"
    return await report_download(path, filename, "check")
