"""What the pages show, as plain data read in one transaction (called off the event loop)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from daemon import reports
from daemon.errors import NotFound
from daemon.notify.figures import (
    ENTITY_LABELS,
    PERCENT_NOTE,
    FileFigures,
    file_figures,
    plural,
)
from daemon.notify.paused import ThresholdLine, threshold_line
from daemon.notify.problem_list import ProblemLine, problem_lines
from daemon.roster.entities import ENTITIES
from daemon.roster.outcome import ImportReport, ImportState, format_label
from daemon.roster.plan import EntityChanges
from daemon.roster.problems import Problem
from daemon.store import imports, tenants, users
from daemon.store.database import Database
from daemon.store.imports import ImportRecord
from daemon.store.tenants import Tenant
from daemon.store.users import AuditEntry, User
from daemon.web.auth import can_see_tenant, visible_tenant_ids

# The largest id or page number a query takes (BIGINT); a larger one is no row at all.
LARGEST_ID = 2**63 - 1

IMPORTS_PAGE_SIZE = 50  # imports per page of the list (keyset: ?before=ID)
MAX_PAUSED_SHOWN = 100  # paused imports listed above the others on the first page
PROBLEMS_PAGE_SIZE = 50  # problem lines (single problems or groups) per page of an import
# What approving does, in the order a district weighs it.
_CHANGES = (("deactivated", "deactivate"), ("updated", "update"), ("reactivated", "reactivate"),
            ("added", "add"))  # fmt: skip


@dataclass(frozen=True)
class ImportsPage:
    paused: list[ImportRecord]  # on top, first page only (unless filtered by state)
    records: list[ImportRecord]
    next_before: int | None  # the cursor of the next page
    tenants: list[Tenant]  # an operator's switcher; empty for a district administrator
    tenant: str | None
    state: ImportState | None
    paused_not_shown: int = 0  # paused imports past MAX_PAUSED_SHOWN: see ?state=paused
    summaries: dict[int, str] = field(default_factory=dict)  # import id → its compact counts


# The list's compact counts, in the order a district reads its roster.
SUMMARY_ENTITIES = ("students", "teachers", "sections")
_SUMMARY_FIGURES = (("added", "+"), ("updated", "~"), ("deactivated", "−"))


def change_summary(record: ImportRecord) -> str:
    """`students +12 ~3 −1 · teachers ~2` from the record's stored plan counts (no query);
    "no changes" for a plan that changes nothing, "" when no plan was made (a failure)."""
    if not record.counts:
        return ""
    parts = []
    for name in SUMMARY_ENTITIES:
        counts = record.counts.get(name) or {}
        figures = [f"{sign}{counts[key]:,}" for key, sign in _SUMMARY_FIGURES if counts.get(key)]
        if figures:
            parts.append(f"{name} {' '.join(figures)}")
    return " · ".join(parts) or "no changes"


def the_tenant(db: Database, user: User, name: str | None) -> Tenant | None:
    """The tenant a page is about: a district administrator's own, whatever `name` says
    (another tenant is a 404, never a 403 that confirms it exists)."""
    with db.read() as conn:
        if not user.operator:
            own = tenants.by_id(conn, user.tenant_id or 0)
            if name not in (None, "", own.name):
                raise NotFound(f"no tenant {name!r}")
            return own
        return tenants.get(conn, name) if name else None


def imports_page(
    db: Database,
    user: User,
    *,
    tenant: str | None,
    state: ImportState | None,
    before: int | None,
    limit: int = IMPORTS_PAGE_SIZE,
) -> ImportsPage:
    chosen = the_tenant(db, user, tenant)
    tenant_id = chosen.id if chosen else visible_tenant_ids(user)
    with db.read() as conn:
        paused: list[ImportRecord] = []
        paused_not_shown = 0
        other_than: tuple[ImportState, ...] = ()
        if state is None:
            # Paused ones wait for a person: they lead every first page, and are not repeated.
            other_than = (ImportState.PAUSED,)
            if before is None:
                paused = imports.list_recent(
                    conn, tenant_id=tenant_id, states=[ImportState.PAUSED],
                    limit=MAX_PAUSED_SHOWN + 1,
                )  # fmt: skip
            if len(paused) > MAX_PAUSED_SHOWN:  # counted only when there are more to tell of
                total = imports.count_in_state(conn, ImportState.PAUSED, tenant_id=tenant_id)
                paused, paused_not_shown = paused[:MAX_PAUSED_SHOWN], total - MAX_PAUSED_SHOWN
        records = imports.list_recent(
            conn,
            tenant_id=tenant_id,
            states=[state] if state else None,
            other_than=other_than,
            before=before,
            limit=limit + 1,
        )
        switcher = tenants.list_all(conn) if user.operator else []
    more = len(records) > limit
    records = records[:limit]
    return ImportsPage(
        paused=paused,
        records=records,
        next_before=records[-1].id if more else None,
        tenants=switcher,
        tenant=chosen.name if chosen else None,
        state=state,
        paused_not_shown=paused_not_shown,
        summaries={r.id: change_summary(r) for r in [*paused, *records]},
    )


def visible_import(db: Database, user: User, import_id: int) -> ImportRecord:
    """The import, if `user` may see it; another tenant's is as missing as one never made."""
    if import_id > LARGEST_ID:  # no such row, and the query itself would overflow
        raise NotFound(f"no import #{import_id}")
    with db.read() as conn:
        try:
            record = imports.get(conn, import_id)
        except NotFound:
            record = None
    if record is None or not can_see_tenant(user, record.tenant_id):
        raise NotFound(f"no import #{import_id}")
    return record


@dataclass(frozen=True)
class Step:
    what: str
    at: datetime | None
    who: str | None = None


@dataclass(frozen=True)
class ProblemFilter:
    severity: str = ""
    file: str = ""
    code: str = ""
    page: int = 1


@dataclass(frozen=True)
class ImportView:
    record: ImportRecord
    report: ImportReport
    figures: list[FileFigures]
    thresholds: list[ThresholdLine]
    timeline: list[Step]
    audit: list[AuditEntry]
    lines: list[ProblemLine]  # this page of them
    lines_total: int
    pages: int
    chosen: ProblemFilter
    severities: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)

    percent_note: str = PERCENT_NOTE

    @property
    def paused(self) -> bool:
        return self.record.state is ImportState.PAUSED

    @property
    def applied(self) -> bool:
        """Whether it can be undone (daemon/undo.py: back to it, if a newer one was applied)."""
        return self.record.state in imports.APPLIED

    @property
    def problems_kept(self) -> int:
        return len(self.report.problems)

    @property
    def problems_total(self) -> int:
        return sum(self.report.problem_totals.values())


def import_view(
    db: Database, user: User, import_id: int, chosen: ProblemFilter = ProblemFilter()
) -> ImportView:
    record = visible_import(db, user, import_id)
    with db.read() as conn:
        report = reports.report_of(conn, record)
        audit = users.audit_of_import(conn, import_id)
    shown = problem_page(report.problems, chosen)
    return ImportView(
        record=record,
        report=report,
        figures=file_figures(report.files, report.entities),
        thresholds=[threshold_line(t) for t in report.tripped],
        timeline=timeline(record, report),
        audit=audit,
        **shown.fields(),
    )


@dataclass(frozen=True)
class ProblemPage:
    """A page of problems as the import page lists them: grouped, filtered, paged."""

    lines: list[ProblemLine]
    lines_total: int
    pages: int
    chosen: ProblemFilter
    severities: list[str]
    files: list[str]
    codes: list[str]

    def fields(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def problem_page(problems: Sequence[Problem], chosen: ProblemFilter) -> ProblemPage:
    wanted = [
        p
        for p in problems
        if (not chosen.severity or str(p.severity) == chosen.severity)
        and (not chosen.file or (p.file or "") == chosen.file)
        and (not chosen.code or p.code == chosen.code)
    ]
    lines = problem_lines(wanted)
    pages = max(1, -(-len(lines) // PROBLEMS_PAGE_SIZE))
    page = min(max(chosen.page, 1), pages)
    start = (page - 1) * PROBLEMS_PAGE_SIZE
    return ProblemPage(
        lines=lines[start : start + PROBLEMS_PAGE_SIZE],
        lines_total=len(lines),
        pages=pages,
        chosen=ProblemFilter(chosen.severity, chosen.file, chosen.code, page),
        severities=sorted({str(p.severity) for p in problems}),
        files=sorted({p.file for p in problems if p.file}),
        codes=sorted({p.code for p in problems}),
    )


def timeline(record: ImportRecord, report: ImportReport) -> list[Step]:
    how = f"by {record.source} · {format_label(record.source_format)}"
    steps = [Step("received", record.received_at, how)]
    if record.started_at:
        steps.append(Step("validation started", record.started_at))
    if record.state is ImportState.PAUSED:
        steps.append(Step("paused for review", record.updated_at))
    elif report.tripped:
        steps.append(Step("paused for review", None))  # when is not kept once decided
    if record.decided_by:
        decision = {
            ImportState.REJECTED: "rejected",
            ImportState.FAILED: "ended",
        }.get(record.state, "approved")
        steps.append(Step(decision, record.decided_at, record.decided_by))
    if record.superseded_by:
        steps.append(Step(f"superseded by import #{record.superseded_by}", record.finished_at))
    elif record.finished_at:
        steps.append(Step(str(record.state).replace("_", " "), record.finished_at))
    return steps


def what_approving_does(report: ImportReport) -> list[str]:
    """The plan's changes as the confirmation says them: "deactivate 600 students"."""
    return what_changes(report.entities)


def what_changes(entities: Mapping[str, EntityChanges]) -> list[str]:
    """A plan's changes as a confirmation says them (an approval's, an undo's)."""
    said: list[str] = []
    for field_name, verb in _CHANGES:
        counts = [
            plural(
                getattr(entities[e.name], field_name),
                _singular(ENTITY_LABELS.get(e.name, e.name)),
                ENTITY_LABELS.get(e.name, e.name),
            )
            for e in ENTITIES
            if e.name in entities and getattr(entities[e.name], field_name)
        ]
        if counts:
            said.append(f"{verb} {', '.join(counts)}")
    return said


def _singular(label: str) -> str:
    return label[:-1] if label.endswith("s") else label


def record_decision(
    db: Database,
    user: User,
    record: ImportRecord,
    action: str,
    outcome: ImportState,
    note: str,
    address: str,
    now: datetime,
) -> None:
    detail = f"result: {str(outcome).replace('_', ' ')}"
    if note:
        detail += f"; note: {note}"
    with db.write() as conn:
        users.audit(
            conn,
            user_name=user.name,
            action=action,
            now=now,
            tenant_id=record.tenant_id,
            import_id=record.id,
            detail=detail,
            address=address,
        )
