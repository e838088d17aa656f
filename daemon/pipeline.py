"""One import's life: validate → plan → apply or pause → record → notify (its end is
written by `recording`, its files are claimed and archived by `intake`, a person's decisions
on it are `decisions`: what this builds on).

This is the one place that turns what happened into import states. The roster changes, the
import's final state and its emails are written in one transaction, so a crash leaves either
all of them or none (and the import is run again after a restart).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import structlog
from sqlalchemy.engine import Connection

from daemon import folders, reports, testpoint, undo, uploadset
from daemon.clever.validate import Validation, fingerprints
from daemon.decisions import Decisions
from daemon.errors import RosterdropError, SpoolError, StoreError
from daemon.recording import Run
from daemon.roster.entities import FILES
from daemon.roster.outcome import ENDED, FileSummary, ImportReport, ImportState
from daemon.roster.plan import EntityChanges, Plan
from daemon.roster.problems import IDENTICAL_UPLOAD, ProblemLog
from daemon.roster.thresholds import TrippedThreshold, beyond_approval, evaluate
from daemon.store import apply, diff, imports, kept_changes, tenants, windows
from daemon.store.imports import ImportRecord
from daemon.store.staging import Stage
from daemon.store.tenants import Tenant
from daemon.windowclock import window_now

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 3


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Validating a district allocates millions of short-lived tuples next to large id sets;
    cyclic GC passes over those sets would cost a third of the time. Imports run alone in
    their process (or the CLI's), so pausing the collector is safe; refcounting still frees."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _Stop(Exception):
    """Leave the import transaction without applying (rolls the staging back)."""

    def __init__(self, state: ImportState) -> None:
        self.state = state


@dataclasses.dataclass(frozen=True)
class Preview:
    """What an upload would do, computed and then rolled back (`import --dry-run`)."""

    validation: Validation
    plan: Plan | None
    tripped: list[TrippedThreshold]
    problems: ProblemLog


class _Timer:
    """Logs how long each phase of an import took (operators see where the time goes)."""

    def __init__(self, **context: object) -> None:
        self.context = context
        self.last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        log.info(f"import {phase}", seconds=round(now - self.last, 3), **self.context)
        self.last = now


class Pipeline(Decisions):
    """Runs imports: validates, plans, applies or pauses, records and notifies; and the
    decisions people make about paused ones."""

    # -- running ----------------------------------------------------------------------------

    def run(self, import_id: int) -> ImportReport:
        """Carry an import as far as it can go: to an end, or to a pause for a person."""
        with self.db.read() as conn:
            tenant_id = imports.get(conn, import_id).tenant_id
        with self.db.tenant_lock(tenant_id):
            started = self._start(import_id)
            if started is not None:
                self._process(*started)
        report = self.report(import_id)
        if report.state.ended:
            with self.db.read() as conn:
                self._archive(imports.get(conn, import_id))
            report = self.report(import_id)  # its files (and report CSV) now in the archive
        return report

    def _start(self, import_id: int) -> tuple[ImportRecord, Tenant] | None:
        """Mark the import as running (counting the attempt); None when there is nothing to do."""
        with self.db.write() as conn:
            record = imports.get(conn, import_id)
            if record.state in ENDED or record.state is ImportState.PAUSED:
                return None
            tenant = tenants.by_id(conn, record.tenant_id)
            if record.attempts >= MAX_ATTEMPTS:
                problems = ProblemLog()
                problems.fatal(
                    "too_many_attempts",
                    f"the import stopped {record.attempts} times before it could end"
                    " (see the daemon's log); upload the files again to retry",
                )
                self._end(
                    conn,
                    Run(record, tenant, Path(record.files_dir or ""), problems),
                    ImportState.FAILED,
                )
                return None
            approved = record.decided_by is not None
            imports.update(
                conn,
                import_id,
                self.now(),
                state=ImportState.IMPORTING if approved else ImportState.VALIDATING,
                started_at=record.started_at or self.now(),
                attempts=record.attempts + 1,
            )
            # An undo is a person's correction, not the district's newest snapshot.
            keeps = approved or record.source == undo.SOURCE
            superseded = [] if keeps else self._supersede_older(conn, record)
            started = imports.get(conn, import_id), tenant
        for older in superseded:  # ended: their files go to the archive, and expire from there
            try:
                self._archive(older)
            except SpoolError as exc:  # not this import's failure: the next start archives it
                log.warning("superseded import not archived", import_id=older.id, error=str(exc))
        return started

    def _process(self, record: ImportRecord, tenant: Tenant) -> None:
        folder = Path(record.files_dir or "")
        with (folder / folders.PROBLEMS).open("w", encoding="utf-8", newline="") as report_file:
            run = Run(record, tenant, folder, ProblemLog(report_file))
            try:
                state = self._validate_and_apply(run)
            except _Stop as stop:
                state = stop.state
            except StoreError as exc:
                if exc.transient:
                    raise  # the database is away: the import stays resumable and runs again
                log.error("import failed", tenant=tenant.name, import_id=record.id, error=str(exc))
                run.problems.fatal("internal_error", f"the import could not be completed: {exc}")
                state = ImportState.FAILED
            except RosterdropError as exc:
                log.error("import failed", tenant=tenant.name, import_id=record.id, error=str(exc))
                run.problems.fatal("internal_error", f"the import could not be completed: {exc}")
                state = ImportState.FAILED
            if state is not None:
                with self.db.write() as conn:
                    self._end(conn, run, state)
        self.mail_queued()

    def _validate_and_apply(self, run: Run) -> ImportState | None:
        """Validate, plan and apply (or pause) in one transaction. Returns None when it
        committed (its state was recorded inside), else the state to record; raises _Stop to
        roll back."""
        if run.record.source == undo.SOURCE:
            self._undo(run)
            return None
        settings = run.tenant.settings
        # The format the set was claimed in, whatever the tenant's setting says since.
        found = uploadset.find(run.folder, run.record.source_format)
        # The spool folder holds the set (and older case twins); the upload's other files
        # stayed in /upload and are named in the manifest.
        found.others = folders.others(run.folder)
        prints = fingerprints(found)
        run.snapshot_hash = _snapshot_hash(
            {n: p.sha256 for n, p in prints.items()}, settings.as_dict()
        )
        approved = run.record.decided_by is not None
        with self.db.read() as conn:
            previous = imports.last_applied(conn, run.tenant.id)
        if previous and previous.snapshot_hash == run.snapshot_hash:
            return self._identical(run, previous)
        timer = _Timer(tenant=run.tenant.name, import_id=run.record.id)
        with (
            gc_paused(),
            self.db.write() as conn,
            Stage(conn, run.tenant.id, reader=self.db.read) as stage,
        ):
            run.validation = uploadset.validate(
                found, prints, settings, run.problems, stage, scratch=run.folder
            )
            if not run.validation.fatal:  # else nothing more is staged for a rollback
                stage.flush()
            timer.lap("validated")
            testpoint.reached("validated-before-plan")
            if run.validation.fatal:
                raise _Stop(ImportState.FAILED)
            run.plan = diff.plan(stage, run.tenant.id, first_import=previous is None)
            timer.lap("planned")
            held = windows.rules_for(conn, run.tenant.id, window_now(self.now))
            run.tripped = evaluate(
                run.plan, run.validation.error_rows, run.validation.rows_read,
                held.settings(settings),
            ) + held.held  # fmt: skip
            if approved:
                run.tripped = beyond_approval(run.tripped, run.record.tripped or [])
            if run.tripped:
                # The pause commits with its plan kept record by record (the roster itself
                # untouched): all of it, or (a crash) none, and the import runs again.
                kept_changes.keep(stage, run.plan, run.tenant.id, run.record.id, applied=False)
                timer.lap("kept")
                stage.close()
                self._end(conn, run, ImportState.PAUSED)
                testpoint.reached("pause-before-commit")
                return None
            # Before the apply: updates' before values are read from the roster. An approved
            # import's paused plan is replaced by what it does now.
            kept_changes.keep(stage, run.plan, run.tenant.id, run.record.id, applied=True)
            timer.lap("kept")
            apply.apply(stage, run.tenant.id, run.record.id, self.now())
            held.used(conn, run.record.id)
            stage.close()
            timer.lap("applied")
            state = (
                ImportState.IMPORTED_WITH_ERRORS
                if run.validation.error_rows
                else ImportState.IMPORTED
            )
            self._end(conn, run, state)
            testpoint.reached("apply-before-commit")
        return None

    def _undo(self, run: Run) -> None:
        """An undo import: applied and recorded in one transaction like any import's."""
        with self.db.write() as conn:
            run.plan = undo.carry_out(conn, run.record, run.problems, self.now())
            if run.plan is None:
                raise _Stop(ImportState.FAILED)
            # No file was read: the figures per file still say what changed.
            run.validation = Validation(files={name: FileSummary(name) for name in FILES})
            self._end(conn, run, ImportState.IMPORTED)
            testpoint.reached("undo-before-commit")

    def _identical(self, run: Run, previous: ImportRecord) -> ImportState:
        """The same five files as the last applied import: the roster already matches them."""
        with self.db.read() as conn:
            kept = imports.problems(conn, previous.id)
        report = Path(previous.files_dir) / folders.PROBLEMS if previous.files_dir else None
        run.problems.repeat(kept, previous.problem_totals or {}, report)
        run.problems.warning(
            IDENTICAL_UPLOAD,
            f"the same five files as import #{previous.id}: the roster already matches them,"
            " so nothing was changed",
        )
        before = {
            name: EntityChanges.from_dict(data) for name, data in (previous.counts or {}).items()
        }
        run.plan = Plan(
            {
                name: EntityChanges(
                    active_before=c.active_after,
                    unchanged=c.added + c.updated + c.reactivated + c.unchanged,
                    held=c.held,
                )
                for name, c in before.items()
            },
            first_import=False,
        )
        rows = previous.file_rows or {}
        run.validation = Validation(
            files={
                name: FileSummary(
                    name, **{k: v for k, v in rows.get(name, {}).items() if k != "file"}
                )
                for name in rows or FILES
            }
        )
        return previous.state

    def preview(
        self,
        tenant: Tenant,
        folder: Path,
        problems: ProblemLog | None = None,
        input_format: str | None = None,
    ) -> Preview:
        """Validate and plan an upload against the roster without recording anything
        (`problems`: a log that also writes the report CSV, as a check's does; `input_format`:
        what the files are, else the tenant's setting says)."""
        found = uploadset.find_path(folder, input_format or tenant.settings.input_format)
        if folders.claimed(folder):  # a check's spool folder: what sat beside the set
            found.others = folders.others(folder)
        problems = problems or ProblemLog()
        plan, tripped = None, []
        with self.db.read() as conn:
            first_import = imports.last_applied(conn, tenant.id) is None
        with gc_paused(), self.db.read() as conn, Stage(conn, tenant.id) as stage:
            # A claimed folder (a check's) is the daemon's: a zip is unpacked there, as an
            # import's is, not into the system's temporary folder.
            scratch = folder if folders.claimed(folder) else None
            validation = uploadset.validate(
                found, fingerprints(found), tenant.settings, problems, stage, scratch=scratch
            )
            if not validation.fatal:
                plan = diff.plan(stage, tenant.id, first_import=first_import)
                held = windows.rules_for(conn, tenant.id, window_now(self.now))
                tripped = evaluate(
                    plan, validation.error_rows, validation.rows_read,
                    held.settings(tenant.settings),
                ) + held.held  # fmt: skip
            stage.close()  # the roster was only read; the staging tables go away
        return Preview(validation, plan, tripped, problems)

    def approve(self, import_id: int, by: str) -> ImportReport:
        """A person's approval (`decisions`: rejecting, ending): the paused import runs
        again, and applies what it finds now."""
        self._decide(import_id, by, ImportState.APPROVED)
        return self.run(import_id)

    def _supersede_older(self, conn: Connection, record: ImportRecord) -> list[ImportRecord]:
        """A newer snapshot makes a tenant's paused imports obsolete; returns them, ended."""
        paused = imports.list_recent(
            conn, tenant_id=record.tenant_id, states=[ImportState.PAUSED], limit=1000
        )
        tenant = tenants.by_id(conn, record.tenant_id)
        superseded = []
        for older in paused:
            if older.id < record.id:
                imports.update(
                    conn,
                    older.id,
                    self.now(),
                    state=ImportState.SUPERSEDED,
                    superseded_by=record.id,
                    finished_at=self.now(),
                )
                self._notify(conn, reports.report_of(conn, imports.get(conn, older.id)), tenant)
                log.info(
                    "import superseded", tenant=tenant.name, import_id=older.id, by_import=record.id
                )
                superseded.append(imports.get(conn, older.id))
        return superseded


def _snapshot_hash(files: Mapping[str, str], settings: Mapping[str, object]) -> str:
    """Identifies what an import would do: the five files' bytes and the tenant's settings."""
    text = json.dumps({"files": dict(sorted(files.items())), "settings": settings}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()
