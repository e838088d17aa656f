"""An import as people see it: the report built from its record, and the emails it sends."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Connection

from daemon import folders
from daemon.config import SmtpSettings
from daemon.notify import messages
from daemon.roster.outcome import ENDED, FileSummary, ImportReport, ImportState
from daemon.roster.plan import EntityChanges
from daemon.roster.problems import Problem
from daemon.roster.thresholds import TrippedThreshold
from daemon.store import imports, outbox
from daemon.store.imports import ImportRecord
from daemon.store.tenants import Tenant


def report_of(
    conn: Connection, record: ImportRecord, problems: Sequence[Problem] | None = None
) -> ImportReport:
    """The report of an import; `problems` saves reading back the ones just recorded."""
    if problems is None:
        problems = imports.problems(conn, record.id)
    csv_path = Path(record.files_dir) / folders.PROBLEMS if record.files_dir else None
    return ImportReport(
        import_id=record.id,
        tenant=record.tenant,
        state=record.state,
        source=record.source,
        received_at=record.received_at,
        started_at=record.started_at,
        finished_at=record.finished_at,
        files=tuple(FileSummary(**data) for data in (record.file_rows or {}).values()),
        entities={n: EntityChanges.from_dict(d) for n, d in (record.counts or {}).items()},
        tripped=tuple(TrippedThreshold.from_dict(t) for t in record.tripped or []),
        problems=tuple(problems),
        problem_totals=record.problem_totals or {},
        fatal_reason=record.fatal_reason,
        report_csv=csv_path if csv_path and csv_path.exists() else None,
        superseded_by=record.superseded_by,
        decided_by=record.decided_by,
        decided_at=record.decided_at,
        work_seconds=record.work_seconds,
        source_format=record.source_format,
    )


def work_seconds(record: ImportRecord, now: datetime) -> float:
    """The seconds `record` has worked by `now`, when a run of it ends (or pauses).

    A run after an approval (only a paused import is decided) began when the person decided,
    and adds to what the runs before the pause did: the time the import waited for that
    person is no work of its own."""
    began = record.decided_at or record.started_at or record.received_at
    return (record.work_seconds or 0.0) + max(0.0, (now - began).total_seconds())


def queue_emails(
    conn: Connection, report: ImportReport, tenant: Tenant, smtp: SmtpSettings, now: datetime
) -> None:
    """In the caller's transaction: Check Your Data for a pause, Import Results for an end."""
    link = messages.review_url(smtp.web_url, report.import_id)
    if report.state is ImportState.PAUSED:
        email = messages.check_your_data(report, tenant.emails, smtp, review_url=link)
    elif report.state in ENDED:
        email = messages.import_results(report, tenant.emails, smtp, review_url=link)
    else:
        return
    outbox.enqueue(conn, email, tenant_id=tenant.id, import_id=report.import_id, now=now)
