"""How long an import took, as its emails say: the work, not the wait for a person."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from daemon.reports import work_seconds
from daemon.roster.outcome import ImportState
from daemon.store.imports import ImportRecord

RECEIVED = datetime(2026, 9, 7, 6, 0, tzinfo=UTC)


def record(**values: object) -> ImportRecord:
    base: dict[str, object] = dict(
        id=7, tenant_id=1, tenant="acme", state=ImportState.VALIDATING, source="sftp",
        received_at=RECEIVED, updated_at=RECEIVED, started_at=RECEIVED + timedelta(seconds=2),
    )  # fmt: skip
    return ImportRecord(**(base | values))  # type: ignore[arg-type]


def test_a_run_without_a_pause_works_from_its_start() -> None:
    assert work_seconds(record(), RECEIVED + timedelta(seconds=32)) == 30.0


def test_a_run_after_an_approval_adds_to_the_work_before_the_pause() -> None:
    approved = RECEIVED + timedelta(hours=3)
    resumed = record(state=ImportState.IMPORTING, work_seconds=12.5, decided_at=approved)

    assert work_seconds(resumed, approved + timedelta(seconds=4)) == 16.5


def test_an_import_paused_before_the_figure_was_kept_counts_from_its_approval() -> None:
    approved = RECEIVED + timedelta(hours=3)
    older = record(state=ImportState.IMPORTING, decided_at=approved)

    assert work_seconds(older, approved + timedelta(seconds=4)) == 4.0
