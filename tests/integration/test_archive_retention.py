"""Archive retention: an upload's files stay in the archive for `retention_days` and are then
removed; the import's record, counts and problems stay, and a paused upload is never removed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from serve_fixtures import add_tenant as add_sftp_tenant
from serve_fixtures import serving

from daemon.config import Settings
from daemon.pipeline import Pipeline
from daemon.roster.entities import FILES
from daemon.roster.outcome import ImportState
from daemon.store.database import Database
from tests.support import drop
from tests.support.clever import FIXTURES
from tests.support.roster import add_tenant, run_import


class Clock:
    """A clock the test sets: when each import happened, and when the housekeeping runs."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def days_ago(self, days: float) -> None:
        self.now = datetime.now(UTC) - timedelta(days=days)


def files_dir(db: Database, import_id: int) -> Path | None:
    """Where the import's files are now (spool, then archive); None once they expired."""
    [row] = [r for r in drop.import_rows(db) if r["id"] == import_id]
    return Path(row["files_dir"]) if row["files_dir"] else None


def names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def uploaded(folder: Path) -> set[str]:
    """The five files of an upload, under the names the district gave them."""
    found = names(folder)
    assert {n.lower() for n in found} == set(FILES)
    return found


def test_archived_uploads_older_than_the_retention_are_removed_and_recent_ones_kept(
    db: Database, settings: Settings
) -> None:
    add_tenant(db, "acme")
    add_tenant(db, "beta")
    clock = Clock()
    pipeline = Pipeline(db, settings.paths, settings.smtp, clock=clock)

    clock.days_ago(31)
    old = run_import(pipeline, "acme", FIXTURES / "sis_export")
    paused = run_import(pipeline, "beta", FIXTURES / "broken_rows")  # waits for a person
    clock.days_ago(29)
    recent = run_import(pipeline, "acme", FIXTURES / "sis_export")
    assert (old.state, paused.state, recent.state) == (
        ImportState.IMPORTED, ImportState.PAUSED, ImportState.IMPORTED,
    )  # fmt: skip
    old_folder = files_dir(db, old.import_id)
    recent_folder = files_dir(db, recent.import_id)
    paused_folder = files_dir(db, paused.import_id)
    assert old_folder is not None
    assert recent_folder is not None
    assert paused_folder is not None
    assert settings.paths.archive in old_folder.parents
    assert old.report_csv is not None

    clock.days_ago(0)
    assert pipeline.expire(retention_days=30) == 1

    assert not old_folder.exists()
    assert uploaded(FIXTURES / "sis_export") <= names(recent_folder)
    assert uploaded(FIXTURES / "broken_rows") <= names(paused_folder)
    rows = {r["id"]: r for r in drop.import_rows(db)}
    assert rows[old.import_id]["files_dir"] is None
    assert rows[old.import_id]["archived_at"] is not None  # when it was archived stays known
    assert rows[recent.import_id]["files_dir"] == str(recent_folder)
    # The import's history outlives its files: state, counts and problems, but no report CSV.
    report = pipeline.report(old.import_id)
    assert report.state is ImportState.IMPORTED
    assert report.entities == old.entities
    assert report.problems == old.problems
    assert report.report_csv is None

    assert pipeline.expire(retention_days=30) == 0  # nothing left to remove
    # A month and a half later the paused upload is still there to be approved.
    clock.days_ago(-15)
    assert pipeline.expire(retention_days=30) == 1  # the recent one's turn
    assert not recent_folder.exists()
    approved = pipeline.approve(paused.import_id, by="ops")
    assert approved.state is ImportState.IMPORTED_WITH_ERRORS


async def test_the_daemon_removes_expired_uploads_when_it_starts(
    serve_settings_with: Callable[..., Settings], db: Database, sftp_password_hash: str
) -> None:
    settings = serve_settings_with(ROSTERDROP_SPOOL_RETENTION_DAYS="7")
    add_sftp_tenant(db, settings, "acme", sftp_password_hash)
    clock = Clock()
    pipeline = Pipeline(db, settings.paths, settings.smtp, clock=clock)
    clock.days_ago(8)
    week_old = run_import(pipeline, "acme", FIXTURES / "sis_export")
    clock.days_ago(6)
    days_old = run_import(pipeline, "acme", FIXTURES / "sis_export")
    expired = files_dir(db, week_old.import_id)
    kept = files_dir(db, days_old.import_id)
    assert expired is not None
    assert kept is not None

    async with serving(settings, db, sftp_password_hash) as served:
        # The files go first, then the record forgets where they were.
        await served.wait(
            lambda: files_dir(db, week_old.import_id) is None or None,
            "the housekeeping to expire the week-old upload",
        )
        assert not expired.exists()
        assert files_dir(db, days_old.import_id) == kept
        assert kept.exists()


def test_a_superseded_upload_is_archived_and_expires_like_the_others(
    db: Database, settings: Settings
) -> None:
    add_tenant(db, "acme")
    clock = Clock()
    pipeline = Pipeline(db, settings.paths, settings.smtp, clock=clock)
    clock.days_ago(40)
    paused = run_import(pipeline, "acme", FIXTURES / "broken_rows")
    clock.days_ago(39)
    newer = run_import(pipeline, "acme", FIXTURES / "sis_export")
    assert pipeline.report(paused.import_id).state is ImportState.SUPERSEDED
    assert newer.state is ImportState.IMPORTED
    superseded = files_dir(db, paused.import_id)
    assert superseded is not None

    # Ended when the newer one started: archived then, not at the next restart.
    assert settings.paths.archive in superseded.parents, f"never archived: {superseded}"
    clock.days_ago(0)
    assert pipeline.expire(retention_days=30) == 2
    assert not superseded.exists()
