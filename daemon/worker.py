"""An import process: what it runs, and what the fork server makes ready for all of them.

The runner's fork server imports this module once (runner.PRELOAD); every import process is
forked from it with the pipeline imported and the email templates compiled, which a fresh
interpreter would otherwise spend most of a small district's import on.
"""

from __future__ import annotations

import signal
import sys

import structlog

from daemon import logs
from daemon.config import Settings
from daemon.diskspace import EXIT_NO_SPACE, out_of_space
from daemon.errors import RosterdropError
from daemon.notify import render
from daemon.pipeline import Pipeline
from daemon.store import imports
from daemon.store.database import Database

render.compile_templates()
log = structlog.get_logger(__name__)


def run_import(
    settings: Settings,
    import_id: int,
    refund: bool = False,
    db_identity: tuple[int, int] | None = None,
) -> None:
    """The import process's body: its own logging, database connection and pipeline.
    `refund`: the previous run stopped for want of disk space; it does not count as an
    attempt (the attempt is given back before this one is counted). `db_identity`: the SQLite
    file the daemon opened; another file at its path is refused, never imported into."""
    # Ctrl-C in a terminal reaches the whole process group; the daemon, not the key, decides
    # when an import stops (it terminates this process after service.shutdown_timeout).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logs.configure(settings.log.level, settings.log.format)
    try:
        # Never create the database: the daemon did, and a missing one was lost, not new.
        db = Database(
            settings.database_url, lock_dir=settings.paths.locks, create=False, expect=db_identity
        )
    except RosterdropError as exc:
        log.error("import process failed", import_id=import_id, error=str(exc))
        sys.exit(1)
    try:
        pipeline = Pipeline(db, settings.paths, settings.smtp)
        if refund:
            _refund_attempt(pipeline, import_id)
        pipeline.run(import_id)
    except Exception as exc:
        if out_of_space(exc):
            # Not the import's fault: the daemon runs it again once there may be space.
            log.error("import stopped: no disk space", import_id=import_id, error=str(exc))
            sys.exit(EXIT_NO_SPACE)
        # Logged here, not left to multiprocessing's bare traceback on stderr: journald and
        # log shippers get one JSON line naming the import. The exit code makes the daemon
        # run it again later.
        known = isinstance(exc, RosterdropError)  # the database went away, say: no traceback
        log.error("import process failed", import_id=import_id, error=str(exc), exc_info=not known)
        sys.exit(1)
    finally:
        db.close()


def _refund_attempt(pipeline: Pipeline, import_id: int) -> None:
    with pipeline.db.write() as conn:
        record = imports.get(conn, import_id)
        if record.attempts > 0 and not record.state.ended:
            imports.update(conn, import_id, pipeline.now(), attempts=record.attempts - 1)
