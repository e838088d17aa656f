"""A person's decisions on an import: reject a paused one, or end one that cannot end by
itself; approving runs it again (`pipeline`). Each is written with the import's new state
and its emails in one transaction, as every end is (`recording`)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import structlog

from daemon import folders, reports
from daemon.errors import Conflict
from daemon.recording import Recorder, Run
from daemon.roster.outcome import ENDED, ImportReport, ImportState
from daemon.roster.problems import ProblemLog
from daemon.store import imports, tenants

log = structlog.get_logger("daemon.pipeline")  # the import's log lines, as the pipeline's


class Decisions(Recorder):
    def reject(self, import_id: int, by: str) -> ImportReport:
        self._decide(import_id, by, ImportState.REJECTED)
        with self.db.read() as conn:
            self._archive(imports.get(conn, import_id))
        return self.report(import_id)

    def fail(self, import_id: int, by: str, reason: str) -> ImportReport:
        """An operator ends an unfinished import that cannot end by itself (one that crashes on
        every attempt): nothing is applied, the district gets its Import Results, the files are
        archived. The crashed attempts' half-written report is replaced, since it may be
        what keeps crashing them."""
        with self.db.read() as conn:
            tenant_id = imports.get(conn, import_id).tenant_id
        with self.db.tenant_lock(tenant_id, wait=False), self.db.write() as conn:
            record = imports.get(conn, import_id)
            if record.state in ENDED:
                raise Conflict(f"import #{import_id} has already ended ({record.state.value})")
            tenant = tenants.by_id(conn, tenant_id)
            imports.update(conn, import_id, self.now(), decided_by=by, decided_at=self.now())
            folder = Path(record.files_dir or "")
            with contextlib.ExitStack() as stack:
                report = None
                if record.files_dir and folder.is_dir():
                    path = folder / folders.PROBLEMS
                    report = stack.enter_context(path.open("w", encoding="utf-8", newline=""))
                run = Run(imports.get(conn, import_id), tenant, folder, ProblemLog(report))
                run.problems.fatal(
                    "ended_by_operator",
                    f"{by} ended the import before it could finish ({reason});"
                    " nothing was changed: upload the files again to retry",
                )
                self._end(conn, run, ImportState.FAILED)
        self.mail_queued()
        with self.db.read() as conn:
            self._archive(imports.get(conn, import_id))
        return self.report(import_id)

    def _decide(self, import_id: int, by: str, state: ImportState) -> None:
        with self.db.read() as conn:
            tenant_id = imports.get(conn, import_id).tenant_id
        with self.db.tenant_lock(tenant_id), self.db.write() as conn:
            record = imports.get(conn, import_id)
            if record.state is not ImportState.PAUSED:
                raise Conflict(
                    f"import #{import_id} is {record.state.value.replace('_', ' ')}:"
                    " only a paused import can be approved or rejected"
                    + (
                        ""
                        if record.state.ended
                        else f" (`rosterdrop imports fail {import_id}` ends an unfinished one)"
                    )
                )
            imports.update(
                conn, import_id, self.now(), state=state, decided_by=by, decided_at=self.now()
            )
            log.info(f"import {state.value}", tenant=record.tenant, import_id=import_id, by=by)
            if state is ImportState.REJECTED:
                record = imports.get(conn, import_id)
                tenant = tenants.by_id(conn, tenant_id)
                self._notify(conn, reports.report_of(conn, record), tenant)
        self.mail_queued()
