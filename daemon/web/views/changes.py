"""The change browser: an import's records that would be (paused) or were (applied) added,
updated field by field, reactivated, deactivated or held, per entity, paged and searchable;
as a page, a CSV download and /api/v1 JSON."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import csv
import io
import json
import urllib.parse
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from daemon.notify.figures import ENTITY_LABELS, LINK_ENTITY, plural
from daemon.oneroster.validate import SUMMARIES
from daemon.roster.entities import BY_NAME, ENTITIES, Entity
from daemon.roster.outcome import ImportState
from daemon.roster.plan import EntityChanges
from daemon.roster.problems import formula_safe
from daemon.store.database import Database
from daemon.store.imports import APPLIED, ImportRecord
from daemon.store.kept_changes import HELD, KINDS, ChangedRecord, Listing, Seek
from daemon.store.staging import ADD, DEACTIVATE, REACTIVATE, UPDATE
from daemon.store.users import User
from daemon.web.api import api_user
from daemon.web.context import context, session
from daemon.web.views import data
from daemon.web.views.pages import DOWNLOAD_LIMIT_BYTES, int_param, signed_in
from daemon.web.views.roster import MAX_CURSOR_CHARS

CHANGES_PAGE_SIZE = 50  # records per page, of the page and of the API
SEARCH_MAX_CHARS = 100  # a search longer than any id or name is refused, not cut
# The plan's count of each kind, and how a list is titled (paused: would; applied: did).
_COUNTED = {ADD: "added", UPDATE: "updated", REACTIVATE: "reactivated",
            DEACTIVATE: "deactivated", HELD: "held"}  # fmt: skip
_VERBS = {ADD: "add", UPDATE: "update", REACTIVATE: "reactivate", DEACTIVATE: "deactivate",
          HELD: "hold"}  # fmt: skip
_FIGURE_KINDS = {v: k for k, v in _COUNTED.items()}  # a per-file table's column → its kind


@dataclass(frozen=True)
class Tab:
    entity: str
    kind: str
    label: str  # "Deactivated: 600"
    count: int


@dataclass(frozen=True)
class ChangesView:
    record: ImportRecord
    entity: Entity
    kind: str
    q: str
    page: int
    pages: int
    total: int  # records of this entity and kind matching q (at least, unless exact)
    records: list[ChangedRecord]
    entity_counts: list[Tab]  # one per entity: all its changes
    kind_counts: list[Tab]  # this entity's, one per kind
    applied: bool
    after: str = ""  # the cursor of the next page ("": this is the last)
    before: str = ""  # the cursor of the previous page ("": this is the first)
    exact: bool = True  # False: a search counted only in part, `total` is "at least"

    @property
    def title(self) -> str:
        noun = ENTITY_LABELS[self.entity.name]
        if self.kind == HELD:
            return f"{noun.capitalize()} held (rows skipped for an error)"
        what = f"this import {_COUNTED[self.kind]}" if self.applied else f"to {_VERBS[self.kind]}"
        return f"{noun.capitalize()} {what}"

    @property
    def key(self) -> tuple[str, ...]:
        return self.entity.key

    @property
    def query(self) -> str:
        """This list's parameters (without the page), for links."""
        return urllib.parse.urlencode({"entity": self.entity.name, "kind": self.kind, "q": self.q})


def _counts(record: ImportRecord, entity: str) -> EntityChanges:
    return EntityChanges.from_dict((record.counts or {}).get(entity, {}))


def _chosen(record: ImportRecord, entity: str, kind: str) -> tuple[Entity, str]:
    """The list asked for; by default the first entity and kind with any records."""
    if entity and entity not in BY_NAME:
        raise web.HTTPBadRequest(
            reason=f"entity must be one of {', '.join(BY_NAME)}, not {entity!r}"
        )
    if kind and kind not in KINDS:
        raise web.HTTPBadRequest(reason=f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    order = [BY_NAME[entity]] if entity else list(ENTITIES)
    for candidate in order:
        counts = _counts(record, candidate.name)
        for k in [kind] if kind else KINDS:
            if getattr(counts, _COUNTED[k]):
                return candidate, k
    return order[0], kind or DEACTIVATE


def changes_view(
    db: Database, user: User, import_id: int, *, entity: str = "", kind: str = "", q: str = "",
    page: int = 1, after: str = "", before: str = "", limit: int = CHANGES_PAGE_SIZE,
) -> ChangesView:  # fmt: skip
    """One page of a list: after the cursor `after` (the Next link's), before `before` (the
    Previous link's), else page `page` by its number, `page` also numbering the others."""
    if len(q) > SEARCH_MAX_CHARS:  # as sent: the bound the API's description states
        raise web.HTTPBadRequest(
            reason=f"a search is at most {SEARCH_MAX_CHARS} characters, not {len(q)}"
        )
    q = q.strip()
    record = data.visible_import(db, user, import_id)
    chosen, kind = _chosen(record, entity, kind)
    width = len(chosen.key)
    seek = Seek(after=decode_cursor(after, width), before=decode_cursor(before, width))
    applied = record.state in APPLIED
    planned = getattr(_counts(record, chosen.name), _COUNTED[kind])
    records: list[ChangedRecord] = []
    total, exact, more = 0, True, False
    if planned:
        with db.read() as conn:
            listing = _listing(conn, record, chosen, kind)
            total, exact = listing.counted(q) if q else (planned, True)
            page = max(page, 1)
            if exact or (seek.after is None and seek.before is None):
                page = min(page, max(1, -(-total // limit)))  # within the pages surely there
            rows = limit
            if seek.after is None and seek.before is None:
                seek, rows = _by_number(page, total, limit) if exact else (
                    Seek(offset=(page - 1) * limit), limit)  # fmt: skip
            if not exact and seek.before is None:
                rows = limit + 1  # one more says whether a next page is there
            records = listing.page(q, rows, seek)
            more = len(records) > limit or seek.before is not None
            records = records[:limit]
    pages = max(1, -(-total // limit))
    if not exact:  # counted in part: this page, and the next one if it is there
        pages = page + 1 if more else page
    page = min(max(page, 1), pages)
    return ChangesView(
        record=record, entity=chosen, kind=kind, q=q, page=page, pages=pages, total=total,
        records=records, entity_counts=[_entity_tab(record, e) for e in ENTITIES],
        kind_counts=[_kind_tab(record, chosen, k) for k in KINDS], applied=applied,
        after=encode_cursor(records[-1].key) if records and page < pages else "",
        before=encode_cursor(records[0].key) if records and page > 1 else "", exact=exact,
    )  # fmt: skip


def _by_number(page: int, total: int, limit: int) -> tuple[Seek, int]:
    """Page `page` without a cursor, and its number of records: an offset from the nearer
    end, so that the last page costs what the first does and none skips more than half."""
    start = (page - 1) * limit
    on_page = min(limit, total - start)
    from_end = total - start - on_page
    if from_end < start:
        return Seek(offset=from_end, from_end=True), on_page
    return Seek(offset=start), limit


def encode_cursor(key: tuple[str, ...]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode_cursor(raw: str, width: int) -> tuple[str, ...] | None:
    """The key a cursor carries. One that is not a key of this list (malformed, longer than
    MAX_CURSOR_CHARS, another list's) is ignored, as a malformed `page` is: the page is then
    found by its number."""
    if not raw or len(raw) > MAX_CURSOR_CHARS:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError):
        return None
    if (
        not isinstance(values, list)
        or len(values) != width
        or not all(isinstance(v, str) for v in values)
    ):
        return None
    return tuple(values)


def _listing(conn: Any, record: ImportRecord, entity: Entity, kind: str) -> Listing:
    return Listing(
        conn, tenant_id=record.tenant_id, import_id=record.id, entity=entity, kind=kind,
        applied=record.state in APPLIED,
    )  # fmt: skip


def _entity_tab(record: ImportRecord, entity: Entity) -> Tab:
    counts = _counts(record, entity.name)
    total = sum(getattr(counts, _COUNTED[k]) for k in KINDS)
    return Tab(entity.name, "", f"{ENTITY_LABELS[entity.name].capitalize()}: {total:,}", total)


def _kind_tab(record: ImportRecord, entity: Entity, kind: str) -> Tab:
    count = getattr(_counts(record, entity.name), _COUNTED[kind])
    return Tab(entity.name, kind, f"{_COUNTED[kind].capitalize()}: {count:,}", count)


# -- links from the import's page and the confirmation ------------------------------------------


def figure_href(import_id: int, figure_label: str, column: str) -> str | None:
    """The change list behind a count of the per-file table ("students.csv", "deactivated")."""
    kind = _FIGURE_KINDS.get(column)
    if kind is None:
        return None
    if figure_label in _ONEROSTER_ENTITIES:  # "users.csv (students)"
        entity = _ONEROSTER_ENTITIES[figure_label]
    elif figure_label.endswith(f"({ENTITY_LABELS[LINK_ENTITY]})"):
        entity = LINK_ENTITY
    else:
        entity = next((e.name for e in ENTITIES if e.file == figure_label), "")
    if not entity:
        return None
    return list_href(import_id, entity, kind)


_ONEROSTER_ENTITIES = {label: entity for label, _, entity in SUMMARIES if entity}


def list_href(import_id: int, entity: str, kind: str) -> str:
    query = urllib.parse.urlencode({"entity": entity, "kind": kind})
    return f"/imports/{import_id}/changes?{query}#records"


def approval_lists(record: ImportRecord) -> list[tuple[str, str]]:
    """Every change list an approval would apply, as (link text, address): "600 students to
    deactivate"; the most destructive first, as the confirmation says them."""
    lists = []
    for kind in (DEACTIVATE, UPDATE, REACTIVATE, ADD, HELD):
        for entity in ENTITIES:
            count = getattr(_counts(record, entity.name), _COUNTED[kind])
            if count:
                nouns = ENTITY_LABELS[entity.name]
                counted = plural(count, nouns.removesuffix("s"), nouns)
                what = "held as it is" if kind == HELD and count == 1 else "held as they are"
                what = what if kind == HELD else f"to {_VERBS[kind]}"
                lists.append((f"{counted} {what}", list_href(record.id, entity.name, kind)))
    return lists


# -- CSV ---------------------------------------------------------------------------------------


def changes_csv_body(db: Database, user: User, import_id: int, entity: str, kind: str, q: str
                     ) -> tuple[bytes, bool, str]:  # fmt: skip
    """The whole list as a formula-safe CSV (one row per record, each field's before and
    after), of whole rows up to DOWNLOAD_LIMIT_BYTES; and whether it is complete."""
    view = changes_view(db, user, import_id, entity=entity, kind=kind, q=q, limit=1)
    e = view.entity
    out = io.StringIO()
    writer = csv.writer(out)
    header = [*e.key, "name", "change"]
    header += [f"{f} {when}" for f in e.fields for when in ("before", "after")]
    writer.writerow([*header, "line", "in roster"])
    size, complete = len(out.getvalue().encode()), True
    chunks = [out.getvalue()]
    if view.total:
        with (
            db.read() as conn,
            contextlib.closing(_listing(conn, view.record, e, view.kind).stream(q)) as stream,
        ):
            for record in stream:
                out = io.StringIO()
                csv.writer(out).writerow([formula_safe(v) for v in _csv_row(e, view.kind, record)])
                line = out.getvalue()
                size += len(line.encode())
                if size > DOWNLOAD_LIMIT_BYTES:
                    complete = False
                    break
                chunks.append(line)
    filename = f"import-{view.record.id}-{e.name}-{view.kind}.csv"
    return "".join(chunks).encode(), complete, filename


def _csv_row(entity: Entity, kind: str, record: ChangedRecord) -> list[object]:
    row: list[object] = [*record.key, record.label, kind]
    for f in entity.fields:
        before, after = record.fields.get(f, (None, None))
        row += [before, after]
    known = "" if record.known is None else ("yes" if record.known else "no")
    return [*row, record.line, known]


# -- handlers ----------------------------------------------------------------------------------


def _params(request: web.Request) -> dict[str, Any]:
    q = request.query
    return {"entity": q.get("entity", ""), "kind": q.get("kind", ""), "q": q.get("q", "")}


def _paging(request: web.Request) -> dict[str, Any]:
    q = request.query
    return {
        "page": int_param(q, "page") or 1,
        "after": q.get("after", ""),
        "before": q.get("before", ""),
    }


async def changes_page(request: web.Request) -> web.Response:
    user = signed_in(request)
    ctx = context(request)
    view = await asyncio.to_thread(
        changes_view, ctx.db, user, int(request.match_info["id"]), **_params(request),
        **_paging(request),
    )  # fmt: skip
    current = session(request)
    assert current is not None
    return ctx.templates.page(
        "changes.html.j2", title=f"Changes of import #{view.record.id}", user=user,
        csrf_token=current.csrf_token, view=view, paused=view.record.state is ImportState.PAUSED,
    )  # fmt: skip


async def changes_csv(request: web.Request) -> web.Response:
    user = signed_in(request)
    ctx = context(request)
    body, complete, filename = await asyncio.to_thread(
        changes_csv_body, ctx.db, user, int(request.match_info["id"]), **_params(request)
    )
    response = web.Response(body=body, content_type="text/csv", charset="utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["X-Rosterdrop-Complete"] = "true" if complete else "false"
    return response


async def api_changes(request: web.Request) -> web.Response:
    user = api_user(request)
    ctx = context(request)
    view = await asyncio.to_thread(
        changes_view, ctx.db, user, int(request.match_info["id"]), **_params(request),
        **_paging(request),
    )  # fmt: skip
    return web.json_response(
        {
            "import_id": view.record.id,
            "entity": view.entity.name,
            "kind": view.kind,
            "q": view.q,
            "page": view.page,
            "pages": view.pages,
            "total": view.total,
            "total_exact": view.exact,
            "counts": {t.kind: t.count for t in view.kind_counts},
            "records": [_record_json(view.entity, r) for r in view.records],
            "next_after": view.after or None,
            "previous_before": view.before or None,
        }
    )


def _record_json(entity: Entity, record: ChangedRecord) -> dict[str, Any]:
    found: dict[str, Any] = {
        "key": dict(zip(entity.key, record.key, strict=True)),
        "name": record.label,
        "changes": {f: {"before": b, "after": a} for f, (b, a) in record.fields.items()},
    }
    if record.line is not None:
        found |= {"line": record.line, "in_roster": record.known}
    return found
