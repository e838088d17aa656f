"""One check's life: claimed (copied) from /check → dry run → answer in /check/results →
recorded → checked files removed from /check and archived.

A check is never an import: it has its own table, takes no tenant lock (it only reads the
roster, in one transaction, and must never delay or reorder the district's imports: an
import applied meanwhile is in its plan or not, as the report's time says), and nothing of
it can pause, supersede or be approved.
"""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import structlog

from daemon import folders, testpoint
from daemon.check import report, results
from daemon.clever.files import FoundFiles
from daemon.config import Settings
from daemon.dryrun import DryRunner
from daemon.errors import RosterdropError, SpoolError
from daemon.intake import utc_now
from daemon.notify.check_results import check_results
from daemon.store import checks, outbox, tenants
from daemon.store.checks import CheckRecord, CheckState
from daemon.store.database import Database
from daemon.store.tenants import Tenant

log = structlog.get_logger(__name__)

# A check that stopped this often before its end (the daemon killed mid-check) is answered
# with a failure rather than tried for ever.
MAX_CHECK_ATTEMPTS = 3
DRY_RUN_ANSWER = "dry-run.json"


class Checker:
    """Claims sets from /check, runs them one at a time, writes and records their answers."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        dry_runs: DryRunner,
        *,
        mail_queued: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.db = db
        self.settings = settings
        self.paths = settings.paths
        self.dry_runs = dry_runs
        self.mail_queued = mail_queued
        self.now = clock
        # tenant -> its checks whose files still sit in /check
        self._unfinished: defaultdict[str, set[int]] = defaultdict(set)
        # One check at a time: a check is a district's test, never worth a second core.
        self._one_at_a_time = asyncio.Lock()
        self.node_id: int | None = None  # the cluster node this is (daemon.cluster); None: one

    def unfinished(self, tenant: str) -> int:
        """Checks of `tenant` claimed whose files are still in /check (not to be claimed again):
        in a cluster any node's, which only the database knows."""
        if self.node_id is None:
            return len(self._unfinished[tenant])
        with self.db.read() as conn:
            return checks.unfinished(conn, tenant)

    # -- claiming ---------------------------------------------------------------------------

    def receive(self, tenant: Tenant, found: FoundFiles) -> int:
        """Record a check and copy its files into the spool; returns the check id. Copied,
        not moved: the files leave /check only once their answer is in /check/results."""
        files = {name: {"name": path.name} for name, path in found.files.items()}
        with self.db.write() as conn:
            check_id = checks.create(
                conn, tenant.id, files=files, now=self.now(), node_id=self.node_id
            )
            folder = self.paths.spool / tenant.name / f"check-{check_id}"
            checks.update(conn, check_id, files_dir=str(folder))
        try:
            twins = [ignored for _, ignored in found.ignored_twins]
            manifest = folders.claim(
                folder, found.files, move=False, others=found.others, twins=twins
            )
        except SpoolError:
            self._undo_claim(check_id, folder)
            raise
        with self.db.write() as conn:
            checks.update(conn, check_id, files={**manifest["files"], "others": manifest["others"]})
        self._unfinished[tenant.name].add(check_id)
        log.info("check claimed", tenant=tenant.name, check_id=check_id)
        return check_id

    def _undo_claim(self, check_id: int, folder: Path) -> None:
        folders.expire(folder)  # copies: the originals never left /check
        with self.db.write() as conn:
            checks.delete(conn, check_id)

    def recover(self) -> list[int]:
        """After a restart (and, in a cluster, whenever a node died): drop interrupted claims,
        finish ended checks, and return the checks to run again, oldest first. In a cluster
        only this node's: those of dead nodes are made its own first, a live node's are left."""
        with self.db.write() as conn:
            mine = None if self.node_id is None else checks.take_over(conn, self.node_id)
        if mine == []:
            return []
        with self.db.read() as conn:
            pending = checks.pending(conn, mine)
            leftovers = checks.unarchived(conn, mine)
        again = []
        for record in pending:
            folder = Path(record.files_dir or "")
            if folders.claimed(folder):
                self._unfinished[record.tenant].add(record.id)
                again.append(record.id)
            else:
                self._undo_claim(record.id, folder)
                log.warning("interrupted check claim undone", check_id=record.id)
        for record in leftovers:
            self._finish(record)
        return again

    # -- running ----------------------------------------------------------------------------

    async def run(self, check_id: int) -> None:
        async with self._one_at_a_time:
            record = await asyncio.to_thread(self._start, check_id)
            if record.state is CheckState.RECEIVED:
                record = await self._check(record)
            await asyncio.to_thread(self._finish, record)

    def _start(self, check_id: int) -> CheckRecord:
        with self.db.write() as conn:
            record = checks.get(conn, check_id)
            if record.state is CheckState.RECEIVED:
                checks.update(conn, check_id, attempts=record.attempts + 1)
            return record

    async def _check(self, record: CheckRecord) -> CheckRecord:
        folder = Path(record.files_dir or "")
        csv = folder / folders.PROBLEMS
        name = results.results_name(record.id, record.received_at)
        if record.attempts >= MAX_CHECK_ATTEMPTS:
            error = f"the check stopped {record.attempts} times before it could end"
            answer = report.failure_json(record.id, record.tenant, record.received_at, error)
        else:
            try:
                dry_run = await self.dry_runs.check(
                    record.tenant, folder, folder / DRY_RUN_ANSWER, csv
                )
            except RosterdropError as exc:
                log.error("check failed", tenant=record.tenant, check_id=record.id, error=str(exc))
                answer = report.failure_json(record.id, record.tenant, record.received_at, str(exc))
            else:
                answer = report.as_json(record.id, record.tenant, record.received_at, name, dry_run)
        failed = answer["state"] == str(CheckState.FAILED)
        await asyncio.to_thread(testpoint.reached, "check-before-answer")
        await asyncio.to_thread(
            results.write,
            self.paths.check_results(record.tenant),
            name,
            answer,
            None if failed else csv,
            self.settings.spool.check_results_kept,
        )
        return await asyncio.to_thread(self._record, record, name, answer)

    def _record(self, record: CheckRecord, name: str, answer: dict[str, object]) -> CheckRecord:
        state = CheckState(str(answer["state"]))
        with self.db.write() as conn:
            checks.update(
                conn,
                record.id,
                state=state,
                finished_at=self.now(),
                result=answer,
                results_name=name,
                error=str(answer["verdict"]) if state is CheckState.FAILED else None,
            )
            tenant = tenants.by_id(conn, record.tenant_id)
            queued = checks.emails_results(conn, tenant.id)
            if queued:
                text = report.as_text(answer)
                email = check_results(answer, text, tenant.emails, self.settings.smtp)
                outbox.enqueue(conn, email, tenant_id=tenant.id, import_id=None, now=self.now())
            record = checks.get(conn, record.id)
        if queued:
            self.mail_queued()
        log.info(
            "check " + state.value, tenant=record.tenant, check_id=record.id, results=name,
            outcome=answer["outcome"],
        )  # fmt: skip
        return record

    def _finish(self, record: CheckRecord) -> None:
        """The answer is out: the checked files leave /check (unless replaced since) and the
        check's folder goes to the archive, where it expires with the imports'."""
        folder = Path(record.files_dir or "")
        try:
            if record.archived_at is None and record.files_dir is not None:
                remove_originals(folder, self.paths.check_dir(record.tenant))
                target = folders.archive(folder, self.paths.archive)
                with self.db.write() as conn:
                    checks.update(conn, record.id, files_dir=str(target), archived_at=self.now())
        finally:  # a failed archive is done at the next start; the originals are gone by then
            self._unfinished[record.tenant].discard(record.id)

    def expire(self, retention_days: int) -> int:
        """Remove archived checks' files older than the retention period; returns how many."""
        with self.db.read() as conn:
            old = checks.expired(conn, self.now() - timedelta(days=retention_days))
        for record in old:
            folders.expire(Path(record.files_dir or ""))
            with self.db.write() as conn:
                checks.update(conn, record.id, files_dir=None)
        return len(old)


def remove_originals(folder: Path, check_dir: Path) -> list[str]:
    """Remove from /check the files copied into `folder`, those that are still the same
    (size and time): a file uploaded again since belongs to the next check."""
    removed: list[str] = []
    if not folder.is_dir():
        return removed
    for copy in folder.iterdir():
        if copy.name in folders.OWN_FILES or copy.name == DRY_RUN_ANSWER:
            continue
        original = check_dir / copy.name
        try:
            mine, theirs = copy.stat(), original.stat()
        except FileNotFoundError:
            continue
        if (mine.st_size, mine.st_mtime_ns) == (theirs.st_size, theirs.st_mtime_ns):
            os.unlink(original)
            removed.append(copy.name)
    if removed:
        folders.fsync_dir(check_dir)
    return removed
