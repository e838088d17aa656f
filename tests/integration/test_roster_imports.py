"""Imports through the real pipeline: identical uploads, held rows, recorded history."""

from __future__ import annotations

from daemon.config import Settings
from daemon.roster.outcome import ImportState
from daemon.store.database import Database
from tests.support.clever import FIXTURES
from tests.support.roster import add_tenant, pipeline_for, run_import, tables


def test_an_unchanged_daily_export_stays_one_identical_upload_warning(
    db: Database, settings: Settings
) -> None:
    add_tenant(db, "acme")
    pipeline = pipeline_for(db, settings)
    first = run_import(pipeline, "acme", FIXTURES / "sis_export")
    warnings = [p.code for p in first.problems]
    before = tables(db, "acme")

    for _day in range(3):
        again = run_import(pipeline, "acme", FIXTURES / "sis_export")

    assert again.state is ImportState.IMPORTED
    assert [p.code for p in again.problems] == [*warnings, "identical_upload"]
    assert again.problems[-1].message.startswith(
        f"the same five files as import #{again.import_id - 1}"
    )
    assert tables(db, "acme") == before
