"""The emails a district gets — Import Results, Check Your Data, Incomplete upload — as bytes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from daemon.config import SmtpSettings
from daemon.notify import compose
from daemon.notify.figures import (
    PERCENT_NOTE,
    as_utc,
    duration,
    file_figures,
    plural,
    when,
)
from daemon.notify.paused import threshold_line, what_to_check
from daemon.notify.problem_list import (
    ATTACHMENT_LIMIT_BYTES,
    Attachment,
    ProblemSection,
    problem_section,
)
from daemon.notify.render import neutralise, render
from daemon.notify.skipped import rows_with_errors, what_skipping_does
from daemon.roster.entities import FILES
from daemon.roster.outcome import ImportReport, ImportState, format_label

IMPORT_RESULTS = "import_results"
CHECK_YOUR_DATA = "check_your_data"
INCOMPLETE_UPLOAD = "incomplete_upload"
# The CLI commands an operator runs: the fallback beside the web page's link, or without one.
APPROVE_COMMAND = "rosterdrop imports approve {import_id}"
REJECT_COMMAND = "rosterdrop imports reject {import_id}"
APPLIED = frozenset({ImportState.IMPORTED, ImportState.IMPORTED_WITH_ERRORS})
_THE_REST = "Everything else is in the roster."
# An import's page in the web Import Manager, under [web] public_url (daemon/web/app.py).
REVIEW_PATH = "/imports/{import_id}"


def review_url(base: str, import_id: int) -> str | None:
    """The link an email carries to its import's page; None when no public URL is set."""
    return base.rstrip("/") + REVIEW_PATH.format(import_id=import_id) if base else None


@dataclass(frozen=True)
class OutgoingEmail:
    """A rendered email: what the outbox stores and the sender delivers."""

    kind: str
    subject: str
    recipients: tuple[str, ...]  # the envelope: the tenant's addresses and the operator's copy
    message: bytes  # the complete RFC 5322 message


def import_results(
    report: ImportReport,
    recipients: Sequence[str],
    smtp: SmtpSettings,
    *,
    review_url: str | None = None,
    attachment_limit: int = ATTACHMENT_LIMIT_BYTES,
) -> OutgoingEmail:
    """The email every import that ended sends: what it changed, or why nothing changed."""
    label = state_label(report.state)
    subject = f"Import Results: {report.tenant} import #{report.import_id} — {label}"
    problems = _problems(report, attachment_limit)
    headline, detail = _outcome(report)
    context = {
        **_report_context(report, subject, problems),
        "headline": headline,
        "detail": detail,
        "failed": report.state is ImportState.FAILED,
        "review_url": review_url,
    }
    return _report_email(IMPORT_RESULTS, subject, context, recipients, smtp, report, problems)


def check_your_data(
    report: ImportReport,
    recipients: Sequence[str],
    smtp: SmtpSettings,
    *,
    review_url: str | None = None,
    attachment_limit: int = ATTACHMENT_LIMIT_BYTES,
) -> OutgoingEmail:
    """The email a paused import sends: what tripped, what to check, how to decide."""
    subject = f"Check Your Data: {report.tenant} import #{report.import_id} is paused"
    problems = _problems(report, attachment_limit)
    context = {
        **_report_context(report, subject, problems),
        "thresholds": [threshold_line(t) for t in report.tripped],
        "checks": _checks(report),
        "approve_command": APPROVE_COMMAND.format(import_id=report.import_id),
        "reject_command": REJECT_COMMAND.format(import_id=report.import_id),
        "review_url": review_url,
        # Held by a pause window: applied when it ends, unless decided before.
        "held": any(t.rule == "window" for t in report.tripped),
    }
    return _report_email(CHECK_YOUR_DATA, subject, context, recipients, smtp, report, problems)


def incomplete_upload(
    tenant: str,
    present: Sequence[str],
    missing: Sequence[str],
    since: datetime,
    recipients: Sequence[str],
    smtp: SmtpSettings,
) -> OutgoingEmail:
    """The email a partial upload sends when it has waited too long for the rest of the set."""
    subject = f"Incomplete upload: {tenant} — {plural(len(missing), 'file')} missing"
    waited = (datetime.now(UTC) - as_utc(since)).total_seconds()
    context = {
        "subject": subject,
        "tenant": tenant,
        "present": list(present),
        "missing": list(missing),
        "missing_arrive": "the missing file arrives"
        if len(missing) == 1
        else "the missing files arrive",
        # A OneRoster set is what its manifest lists (daemon/oneroster/files.py).
        "expected": (
            [*present, *missing]
            if any(n.lower() == "manifest.csv" for n in (*present, *missing))
            else FILES
        ),
        "since": when(since),
        "waited": duration(waited),
        "footer": f"rosterdrop · {tenant}",
    }
    headers = [("X-Rosterdrop-Tenant", tenant)]
    return _email(INCOMPLETE_UPLOAD, subject, context, recipients, smtp, headers=headers)


def _checks(report: ImportReport) -> list[str]:
    checks = [what_to_check(t, report.entities) for t in report.tripped]
    rows = rows_with_errors(report.files, report.problem_totals)
    if rows and not any(t.rule == "row_errors" for t in report.tripped):
        # Within what the district allows, yet approving skips them: say what that does.
        checks.append(" ".join(what_skipping_does(rows, report.entities, applied=False)))
    return checks


def state_label(state: ImportState) -> str:
    return state.value.replace("_", " ")


def _problems(report: ImportReport, limit: int) -> ProblemSection:
    filename = f"import-{report.import_id}-problems.csv"
    return problem_section(
        report.problems, report.problem_totals, report.report_csv, filename, limit
    )


def _outcome(report: ImportReport) -> tuple[str, str]:
    """The sentence at the top of Import Results, and the one after it."""
    unchanged = "Nothing in the roster was changed."
    who = report.decided_by or "An administrator"
    decided = f" on {when(report.decided_at)}" if report.decided_at else ""
    approved = [f"{who} approved it{decided}, after it paused."] if report.decided_by else []
    match report.state:
        case ImportState.IMPORTED:
            return "The import finished and the roster is up to date.", " ".join(approved)
        case ImportState.IMPORTED_WITH_ERRORS:
            rows = rows_with_errors(report.files, report.problem_totals)
            told = what_skipping_does(rows, report.entities, applied=True)
            return "The import finished with errors.", " ".join([*approved, *told, _THE_REST])
        case ImportState.FAILED:
            reason = " ".join((report.fatal_reason or "The import failed.").split())
            return reason, unchanged
        case ImportState.REJECTED:
            return f"{who} rejected this import{decided}.", unchanged
        case ImportState.SUPERSEDED:
            newer = f" (import #{report.superseded_by})" if report.superseded_by else ""
            return f"A newer upload{newer} replaced this one before it was applied.", unchanged
        case _:
            return f"The import is {state_label(report.state)}.", ""


def _report_context(report: ImportReport, subject: str, problems: ProblemSection) -> dict[str, Any]:
    files = file_figures(report.files, report.entities)
    return {
        "subject": subject,
        "tenant": report.tenant,
        "import_id": report.import_id,
        "state": state_label(report.state),
        "source": report.source,
        "format": format_label(report.source_format),
        "received": when(report.received_at),
        "started": when(report.started_at),
        "finished": when(report.finished_at),
        "duration": duration(report.duration_seconds),
        "waited": duration(_waited(report)),
        "decision": _decision(report),
        "files": files,
        "columns": [cell.name for cell in files[0].cells] if files else [],
        "percent_note": PERCENT_NOTE if report.entities else "",
        "planned_only": bool(report.entities) and report.state not in APPLIED,
        "problems": problems,
        "footer": f"rosterdrop · {report.tenant} · import #{report.import_id}",
    }


def _decision(report: ImportReport) -> str:
    """Who decided about a paused import, and when: "approved by ops, 2024-05-02 15:10 UTC"."""
    if not report.decided_by:
        return ""
    verb = "rejected" if report.state is ImportState.REJECTED else "approved"
    at = f", {when(report.decided_at)}" if report.decided_at else ""
    return f"{verb} by {report.decided_by}{at}"


def _waited(report: ImportReport) -> float | None:
    """The time an approved import spent waiting between its start and its finish: not work."""
    if not report.decided_by or report.work_seconds is None or report.finished_at is None:
        return None
    elapsed = (report.finished_at - (report.started_at or report.received_at)).total_seconds()
    waited = elapsed - report.work_seconds
    return waited if waited >= 1 else None


def _report_email(
    kind: str,
    subject: str,
    context: dict[str, Any],
    recipients: Sequence[str],
    smtp: SmtpSettings,
    report: ImportReport,
    problems: ProblemSection,
) -> OutgoingEmail:
    headers = [
        ("X-Rosterdrop-Tenant", report.tenant),
        ("X-Rosterdrop-Import", str(report.import_id)),
    ]
    return _email(
        kind, subject, context, recipients, smtp, attachment=problems.attachment, headers=headers
    )


def _email(
    kind: str,
    subject: str,
    context: dict[str, Any],
    recipients: Sequence[str],
    smtp: SmtpSettings,
    *,
    headers: Sequence[tuple[str, str]],
    attachment: Attachment | None = None,
) -> OutgoingEmail:
    text, html = render(kind, context)
    to, envelope = _addressing(recipients, smtp)
    message = compose.build(
        subject=subject,
        sender=smtp.from_address,
        to=to,
        text=text,
        html=html,
        attachment=attachment,
        headers=headers,
    )
    return OutgoingEmail(kind, neutralise(subject), envelope, message)


def readdressed(
    message: bytes, recipients: Sequence[str], smtp: SmtpSettings
) -> tuple[tuple[str, ...], bytes]:
    """A stored email addressed anew, to a tenant's current addresses: an operator who fixed
    them (`tenant set --email`) retries the emails that had nobody, or a wrong address."""
    to, envelope = _addressing(recipients, smtp)
    return envelope, compose.readdress(message, to)


def _addressing(
    recipients: Sequence[str], smtp: SmtpSettings
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The To header and the envelope. The operator's copy is blind, unless there is no
    district address: then it is the only reader."""
    to, copies = compose.addresses(recipients), compose.addresses(smtp.copy_to)
    return to or copies, compose.addresses(to, copies)
