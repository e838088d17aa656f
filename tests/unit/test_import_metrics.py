"""What the import metrics count: an operator reads how long imports work from the duration
histogram, so the days a paused import waits for a district's decision must not be in it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from daemon.metrics import REGISTRY, record_metrics
from daemon.roster.outcome import ImportReport, ImportState


def _duration_sum() -> float:
    value = REGISTRY.get_sample_value("rosterdrop_import_duration_seconds_sum")
    return value or 0.0


def test_an_import_approved_three_days_later_counts_its_work_not_the_wait() -> None:
    received = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    report = ImportReport(
        import_id=1, tenant="lincoln", state=ImportState.IMPORTED, source="sftp",
        received_at=received, started_at=received, finished_at=received + timedelta(days=3),
        decided_by="registrar", decided_at=received + timedelta(days=3, seconds=-5),
        work_seconds=7.5,
    )  # fmt: skip
    before = _duration_sum()
    record_metrics(report)
    assert _duration_sum() - before == 7.5


def test_a_paused_import_is_not_counted_until_it_ends() -> None:
    received = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    report = ImportReport(
        import_id=2, tenant="lincoln", state=ImportState.PAUSED, source="sftp",
        received_at=received, started_at=received, work_seconds=3.0,
    )  # fmt: skip
    before = _duration_sum()
    record_metrics(report)
    assert _duration_sum() == before
