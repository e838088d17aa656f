"""Recording where a run of an import ended: its state and figures, its problems and its
emails, in the caller's transaction, so that they are written with the roster's changes or
not at all (`pipeline` runs the import and says which state it ended in).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import structlog
from sqlalchemy.engine import Connection

from daemon import reports
from daemon.clever.validate import Validation
from daemon.intake import Intake
from daemon.roster.outcome import ENDED, ImportReport, ImportState
from daemon.roster.plan import Plan
from daemon.roster.problems import Problem, ProblemLog
from daemon.roster.thresholds import TrippedThreshold
from daemon.store import imports
from daemon.store.imports import ImportRecord
from daemon.store.tenants import Tenant

log = structlog.get_logger("daemon.pipeline")  # the import's log lines, as the pipeline's


@dataclasses.dataclass
class Run:
    """What one run of an import learned, on its way to being recorded."""

    record: ImportRecord
    tenant: Tenant
    folder: Path
    problems: ProblemLog
    validation: Validation | None = None
    plan: Plan | None = None
    tripped: list[TrippedThreshold] = dataclasses.field(default_factory=list)
    snapshot_hash: str | None = None


class Recorder(Intake):
    """Writes an import's end; `Pipeline` builds on it."""

    def _end(self, conn: Connection, run: Run, state: ImportState) -> None:
        """Record where the run ended, with its problems and emails, in `conn`'s transaction."""
        run.problems.flush()  # the emails attach the report file, still open for writing
        now = self.now()
        fatal = next(run.problems.fatals(), None)
        values: dict[str, object] = {
            "state": state,
            "snapshot_hash": run.snapshot_hash,
            "problem_totals": run.problems.totals(),
            "fatal_reason": _sentence(fatal) if fatal else None,
        }
        if run.plan is not None:
            values["counts"] = run.plan.as_dict()
        if run.validation is not None and run.validation.files:
            values["file_rows"] = {
                n: dataclasses.asdict(f) for n, f in run.validation.files.items()
            }
        if state is ImportState.PAUSED:
            values["tripped"] = [t.as_dict() for t in run.tripped]
            values["attempts"] = 0  # the run reached its end: a pause is not a crash
        if state in ENDED:
            values["finished_at"] = now
        values["work_seconds"] = reports.work_seconds(run.record, now)  # notify: "took N s"
        imports.update(conn, run.record.id, now, **values)
        imports.save_problems(conn, run.record.id, run.problems.kept)
        record = imports.get(conn, run.record.id)
        report = reports.report_of(conn, record, run.problems.kept)
        self._notify(conn, report, run.tenant)
        log.info(
            "import " + state.value.replace("_", " "),
            tenant=run.tenant.name,
            import_id=run.record.id,
            errors=run.problems.error_count,
            tripped=[t.describe() for t in run.tripped] or None,
        )

    def _notify(self, conn: Connection, report: ImportReport, tenant: Tenant) -> None:
        reports.queue_emails(conn, report, tenant, self.smtp, self.now())

    def report(self, import_id: int) -> ImportReport:
        with self.db.read() as conn:
            return reports.report_of(conn, imports.get(conn, import_id))


def _sentence(problem: Problem) -> str:
    where = problem.where
    return (
        f"{where}: {problem.message}"
        if where
        else problem.message[:1].upper() + problem.message[1:]
    )
