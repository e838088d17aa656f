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
from daemon.errors import RosterdropError
from daemon.notify import render
from daemon.pipeline import Pipeline
from daemon.store.database import Database

render.compile_templates()
log = structlog.get_logger(__name__)


def run_import(settings: Settings, import_id: int) -> None:
    """The import process's body: its own logging, database connection and pipeline."""
    # Ctrl-C in a terminal reaches the whole process group; the daemon, not the key, decides
    # when an import stops (it terminates this process after service.shutdown_timeout).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logs.configure(settings.log.level, settings.log.format)
    try:
        # Never create the database: the daemon did, and a missing one was lost, not new.
        db = Database(settings.database_url, lock_dir=settings.paths.locks, create=False)
    except RosterdropError as exc:
        log.error("import process failed", import_id=import_id, error=str(exc))
        sys.exit(1)
    try:
        Pipeline(db, settings.paths, settings.smtp).run(import_id)
    except Exception as exc:
        # Logged here, not left to multiprocessing's bare traceback on stderr: journald and
        # log shippers get one JSON line naming the import. The exit code makes the daemon
        # run it again later.
        known = isinstance(exc, RosterdropError)  # the database went away, say: no traceback
        log.error("import process failed", import_id=import_id, error=str(exc), exc_info=not known)
        sys.exit(1)
    finally:
        db.close()
