"""The roster pages and /api/v1/roster: a tenant's records a page at a time, searched by id
or name, and one record with its sections, teachers, students and the imports that made it."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import urllib.parse
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from aiohttp import web

from daemon.errors import NotFound
from daemon.store import roster_reads, roster_records
from daemon.store.database import Database
from daemon.store.roster_reads import LISTED, Page, Query
from daemon.store.tenants import Tenant
from daemon.store.users import User
from daemon.web import api
from daemon.web.context import context
from daemon.web.views.data import the_tenant
from daemon.web.views.pages import page_values, signed_in, tenant_chooser

ROSTER_PAGE_SIZE = 50  # records per page of a roster list
ROSTER_API_PAGE_SIZE = 100  # records per page of GET /api/v1/roster/{entity}
MAX_QUERY_CHARS = 255  # a search term: ids are at most 255 characters (docs/schema.md)
MAX_CURSOR_CHARS = 4096  # a `page` cursor: four sort values of at most 255 characters
# The number of sort values in each list's cursor (daemon/store/roster_reads.py's order).
SORT_WIDTH = {"schools": 2, "students": 4, "teachers": 4, "sections": 3, "enrollments": 3}
TITLES = {
    "schools": "Schools",
    "students": "Students",
    "teachers": "Teachers",
    "sections": "Sections",
    "enrollments": "Enrollments",
}
SEARCHED_BY = {
    "schools": "school id, or the beginning of its name",
    "students": "student id, or the beginning of a last or first name",
    "teachers": "teacher id, or the beginning of a last or first name",
    "sections": "section id, or the beginning of its course name",
    "enrollments": "student id or section id",
}
_ID = {"schools": "school_id", "students": "student_id", "teachers": "teacher_id",
       "sections": "section_id"}  # fmt: skip


def _segment(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def record_href(entity: str, school_id: str, record_id: str, tenant_q: str) -> str:
    if entity == "schools":
        return f"/roster/schools/{_segment(school_id)}{tenant_q}"
    return f"/roster/{entity}/{_segment(school_id)}/{_segment(record_id)}{tenant_q}"


def encode_cursor(values: tuple[str, ...]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")


def decode_cursor(entity: str, raw: str) -> tuple[str, ...] | None:
    """The sort values a `page` cursor carries; a cursor that is not this list's is a 400."""
    if not raw:
        return None
    bad = web.HTTPBadRequest(reason="page: not a page of this list; start from the first page.")
    if len(raw) > MAX_CURSOR_CHARS:
        raise bad
    try:
        values = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError):
        raise bad from None
    if (
        not isinstance(values, list)
        or len(values) != SORT_WIDTH[entity]
        or not all(isinstance(v, str) and "\x00" not in v for v in values)
    ):
        raise bad
    return tuple(values)


def query_of(request: web.Request, entity: str, *, lenient_cursor: bool = False) -> Query:
    """`lenient_cursor`: a cursor that is not this list's means the first page (the API's
    rule for every paging parameter, as `before=` and `page=`), not a 400."""
    q = request.query.get("q", "").strip()
    if len(q) > MAX_QUERY_CHARS:
        raise web.HTTPBadRequest(
            reason=f"q: a search is at most {MAX_QUERY_CHARS} characters, not {len(q)}."
        )
    try:
        after = decode_cursor(entity, request.query.get("page", ""))
    except web.HTTPBadRequest:
        if not lenient_cursor:
            raise
        after = None
    return Query(
        q=q, inactive=request.query.get("inactive", "") in ("1", "true", "on"), after=after
    )


def _entity(request: web.Request) -> str:
    entity = request.match_info["entity"]
    if entity not in LISTED:
        raise NotFound(f"no roster list {entity!r}")
    return entity


@dataclass(frozen=True)
class RosterTenant:
    """The tenant the pages are about, and the query string that keeps an operator on it."""

    tenant: Tenant
    operator: bool

    @property
    def query(self) -> str:
        return f"?tenant={_segment(self.tenant.name)}" if self.operator else ""

    @property
    def field(self) -> str:  # the same, to follow another parameter
        return f"&tenant={_segment(self.tenant.name)}" if self.operator else ""


def _tenant(db: Database, user: User, name: str) -> RosterTenant | None:
    chosen = the_tenant(db, user, name or None)
    return RosterTenant(chosen, user.operator) if chosen else None


async def _choose(request: web.Request, back: str) -> web.Response:
    return await tenant_chooser(
        request, title="Roster", intro="Choose the tenant whose roster to see.",
        link=lambda t: f"{back}?tenant={_segment(t.name)}",
    )  # fmt: skip


def _overview(db: Database, user: User, name: str) -> tuple[RosterTenant, dict[str, Any]] | None:
    chosen = _tenant(db, user, name)
    if chosen is None:
        return None
    with db.read() as conn:
        return chosen, roster_reads.counts(conn, chosen.tenant.id)


async def overview(request: web.Request) -> web.Response:
    user = signed_in(request)
    ctx = context(request)
    found = await asyncio.to_thread(_overview, ctx.db, user, request.query.get("tenant", ""))
    if found is None:
        return await _choose(request, "/roster")
    chosen, counts = found
    return ctx.templates.page(
        "roster.html.j2", **page_values(request, f"Roster of {chosen.tenant.name}"),
        chosen=chosen, counts=counts, titles=TITLES,
    )  # fmt: skip


def _list(
    db: Database, user: User, name: str, entity: str, query: Query, size: int
) -> tuple[RosterTenant, Page] | None:
    chosen = _tenant(db, user, name)
    if chosen is None:
        return None
    if "\x00" in query.q:
        # No record holds a NUL (a file with one is refused: not_text), and PostgreSQL
        # refuses it in a query: such a search finds nothing.
        return chosen, Page([], None)
    with db.read() as conn:
        return chosen, roster_reads.list_page(conn, chosen.tenant.id, entity, query, size)


def _linked(entity: str, page: Page, chosen: RosterTenant) -> list[dict[str, Any]]:
    """The rows with the addresses of the records they name."""
    tq = chosen.query
    for row in page.rows:
        if entity in _ID:
            row["href"] = record_href(entity, row["school_id"], row[_ID[entity]], tq)
        if entity == "enrollments":
            row["student_href"] = record_href("students", row["school_id"], row["student_id"], tq)
            row["section_href"] = record_href("sections", row["school_id"], row["section_id"], tq)
        for teacher in row.get("teachers", []):
            teacher["href"] = record_href(
                "teachers", teacher["school_id"], teacher["teacher_id"], tq
            )
    return page.rows


async def list_page(request: web.Request) -> web.Response:
    user = signed_in(request)
    ctx = context(request)
    entity = _entity(request)
    query = query_of(request, entity)
    found = await asyncio.to_thread(
        _list, ctx.db, user, request.query.get("tenant", ""), entity, query, ROSTER_PAGE_SIZE
    )
    if found is None:
        return await _choose(request, f"/roster/{entity}")
    chosen, page = found
    kept = {"q": query.q, "inactive": "1" if query.inactive else ""}
    if chosen.operator:
        kept["tenant"] = chosen.tenant.name
    params = {k: v for k, v in kept.items() if v}
    next_href = (
        f"/roster/{entity}?" + urllib.parse.urlencode({**params, "page": encode_cursor(page.after)})
        if page.after
        else ""
    )
    first_href = f"/roster/{entity}?" + urllib.parse.urlencode(params) if query.after else ""
    return ctx.templates.page(
        "roster_list.html.j2", **page_values(request, f"{TITLES[entity]} of {chosen.tenant.name}"),
        chosen=chosen, entity=entity, titles=TITLES, searched_by=SEARCHED_BY[entity],
        query=query, rows=_linked(entity, page, chosen), next_href=next_href,
        first_href=first_href, page_size=ROSTER_PAGE_SIZE,
    )  # fmt: skip


@dataclass
class RecordView:
    entity: str
    chosen: RosterTenant
    record: dict[str, Any]
    created: dict[str, Any]
    changed: dict[str, Any]
    sections: list[dict[str, Any]] = field(default_factory=list)
    students: list[dict[str, Any]] = field(default_factory=list)
    teachers: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    school_href: str = ""


def _record(db: Database, user: User, name: str, entity: str, key: tuple[str, ...]) -> RecordView:
    chosen = _tenant(db, user, name)
    if chosen is None:
        raise web.HTTPBadRequest(reason="tenant: an operator names the tenant (?tenant=NAME).")
    tenant_id, tq = chosen.tenant.id, chosen.query
    with db.read() as conn:
        row = roster_records.record(conn, tenant_id, entity, key)
        view = RecordView(
            entity, chosen, row, roster_records.import_of(conn, row["created_import_id"]),
            roster_records.import_of(conn, row["changed_import_id"]),
            school_href=record_href("schools", row["school_id"], "", tq),
        )  # fmt: skip
        if entity == "schools":
            view.counts = roster_reads.school_counts(conn, tenant_id, row["school_id"])
        elif entity == "students":
            view.sections = roster_records.sections_of_student(conn, tenant_id, *key)
        elif entity == "teachers":
            view.sections = roster_records.sections_of_teacher(conn, tenant_id, key[1])
        else:
            pair = (key[0], key[1])
            teachers = roster_reads.section_teachers(conn, tenant_id, [pair])
            view.teachers = teachers.get(pair, [])
            view.students = roster_records.students_of_section(conn, tenant_id, *key)
    for section in view.sections:
        section["href"] = record_href("sections", section["school_id"], section["section_id"], tq)
        for teacher in section["teachers"]:
            teacher["href"] = record_href(
                "teachers", teacher["school_id"], teacher["teacher_id"], tq
            )
    for teacher in view.teachers:
        teacher["href"] = record_href("teachers", teacher["school_id"], teacher["teacher_id"], tq)
    for student in view.students:
        student["href"] = record_href("students", student["school_id"], student["student_id"], tq)
    return view


async def record_page(request: web.Request) -> web.Response:
    user = signed_in(request)
    ctx = context(request)
    entity = request.match_info["entity"]
    school = request.match_info["school"]
    key = (school,) if entity == "schools" else (school, request.match_info["id"])
    view = await asyncio.to_thread(
        _record, ctx.db, user, request.query.get("tenant", ""), entity, key
    )
    label = TITLES[entity][:-1]
    return ctx.templates.page(
        "roster_record.html.j2", **page_values(request, f"{label} {key[-1]}"), view=view,
        label=label, titles=TITLES, max_related=roster_reads.MAX_RELATED,
    )  # fmt: skip


def _iso(value: object) -> str:
    if isinstance(value, date):  # datetimes too
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


async def api_list(request: web.Request) -> web.Response:
    """GET /api/v1/roster/{entity}: a page of records as JSON, with the pages' permissions."""
    user = api.api_user(request)  # the /api/v1 routes' one check: a session (or API token)
    ctx = context(request)
    entity = _entity(request)
    query = query_of(request, entity, lenient_cursor=True)
    found = await asyncio.to_thread(
        _list, ctx.db, user, request.query.get("tenant", ""), entity, query,
        ROSTER_API_PAGE_SIZE,
    )  # fmt: skip
    if found is None:
        raise web.HTTPBadRequest(reason="tenant: an operator names the tenant (?tenant=NAME).")
    chosen, page = found
    for row in page.rows:
        for teacher in row.get("teachers", []):
            teacher.pop("school_id", None)
    return web.json_response(
        {
            "tenant": chosen.tenant.name,
            "entity": entity,
            "records": page.rows,
            "next_page": encode_cursor(page.after) if page.after else None,
        },
        dumps=lambda value: json.dumps(value, default=_iso),
    )
