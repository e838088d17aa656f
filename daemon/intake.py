"""An upload's files and its import record, from the district's folder to the archive.

Claiming moves (or copies) a complete set into `spool/<tenant>/<id>/` and registers the
import; an interrupted claim is undone, so no file goes missing from /upload; an import that
ended is archived, and its files expire from there. The pipeline (a subclass) runs imports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog

from daemon import folders
from daemon.clever.files import FoundFiles
from daemon.config import DataPaths, SmtpSettings
from daemon.errors import SpoolError
from daemon.notify import messages
from daemon.roster.outcome import ImportState
from daemon.store import imports, kept_changes, outbox, tenants
from daemon.store.database import Database
from daemon.store.imports import ImportRecord
from daemon.store.tenants import Tenant

log = structlog.get_logger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Intake:
    """Claims uploads into the spool, undoes interrupted claims, archives and expires."""

    def __init__(
        self,
        db: Database,
        paths: DataPaths,
        smtp: SmtpSettings,
        *,
        mail_queued: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.db = db
        self.paths = paths
        self.smtp = smtp
        self.mail_queued = mail_queued
        self.now = clock
        self.node_id: int | None = None  # the cluster node that claims (daemon.cluster)

    def receive(
        self,
        tenant: Tenant,
        found: FoundFiles,
        *,
        source: str,
        move: bool,
    ) -> int:
        """Register an upload and claim its files into the spool; returns the import id."""
        files = {name: {"name": path.name} for name, path in found.files.items()}
        with self.db.write() as conn:
            import_id = imports.create(
                conn, tenant.id, source=source, files=files, now=self.now(),
                source_format=found.format, node_id=self.node_id,
            )  # fmt: skip
            folder = self.paths.spool / tenant.name / str(import_id)
            imports.update(conn, import_id, self.now(), files_dir=str(folder))
        try:
            twins = [ignored for _, ignored in found.ignored_twins]
            manifest = folders.claim(
                folder, found.files, move=move, others=found.others, twins=twins
            )
        except SpoolError:
            # Undo it now rather than at the next start: until then the files that moved
            # would be missing from the district's folder, and the set never complete.
            upload = next(iter(found.files.values())).parent if move else None
            self._undo_claim(tenant.name, import_id, folder, upload)
            raise
        with self.db.write() as conn:
            imports.update(
                conn,
                import_id,
                self.now(),
                files={**manifest["files"], "others": manifest["others"]},
            )
        log.info("upload claimed", tenant=tenant.name, import_id=import_id, source=source)
        return import_id

    def recover(
        self, mine: Callable[[ImportRecord], bool] = lambda record: True
    ) -> list[tuple[str, int]]:
        """After a restart: undo interrupted claims, archive ended imports, and return the
        imports to run again as (tenant, import id), oldest first. `mine`: which imports this
        process may touch (in a cluster, those of this node: daemon.cluster)."""
        with self.db.read() as conn:
            pending = [r for r in imports.resumable(conn) if mine(r)]
            leftovers = [r for r in imports.unarchived(conn) if mine(r)]
        for record in pending:
            if record.state is ImportState.RECEIVED and not folders.claimed(
                Path(record.files_dir or "")
            ):
                upload = self._origin(record)
                self._undo_claim(record.tenant, record.id, Path(record.files_dir or ""), upload)
        for record in leftovers:
            self._archive(record)
        with self.db.read() as conn:
            return [(r.tenant, r.id) for r in imports.resumable(conn) if mine(r)]

    def _origin(self, record: ImportRecord) -> Path | None:
        """Where an import's files were moved from (None: they were copies, as the CLI's)."""
        if record.source == "sftp":
            return self.paths.upload_dir(record.tenant)
        if record.source == "web":  # the browser upload waiting for Process Import
            return self.paths.web_upload_files(record.tenant)
        return None

    def _undo_claim(self, tenant: str, import_id: int, folder: Path, upload: Path | None) -> None:
        """Files back into `upload` (None: they were copies), and the import row gone."""
        restored = folders.unclaim(folder, upload)
        with self.db.write() as conn:
            imports.delete(conn, import_id)
        log.warning(
            "interrupted claim undone", tenant=tenant, import_id=import_id, restored=restored
        )

    def report_incomplete(
        self, tenant_name: str, present: Sequence[str], missing: Sequence[str], since: datetime
    ) -> None:
        """Tell a district that its upload has been waiting for the rest of the set."""
        with self.db.write() as conn:
            tenant = tenants.get(conn, tenant_name)
            email = messages.incomplete_upload(
                tenant.name, present, missing, since, tenant.emails, self.smtp
            )
            outbox.enqueue(conn, email, tenant_id=tenant.id, import_id=None, now=self.now())
        log.warning(
            "incomplete upload", tenant=tenant_name, present=list(present), missing=list(missing)
        )
        self.mail_queued()

    def _archive(self, record: ImportRecord) -> None:
        if record.files_dir is None or record.archived_at is not None:
            return
        target = folders.archive(Path(record.files_dir), self.paths.archive)
        with self.db.write() as conn:
            imports.update(
                conn, record.id, self.now(), files_dir=str(target), archived_at=self.now()
            )

    def expire(self, retention_days: int) -> int:
        """Remove archived files older than the retention period; returns how many imports."""
        with self.db.read() as conn:
            old = imports.expired(conn, self.now() - timedelta(days=retention_days))
        for record in old:
            folders.expire(Path(record.files_dir or ""))
            with self.db.write() as conn:
                imports.update(conn, record.id, self.now(), files_dir=None)
                kept_changes.forget(conn, record.id)  # the change list expires with the files
        return len(old)
