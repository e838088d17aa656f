"""Prometheus metrics: defined once here, moved by the layer that sees the event."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from daemon.roster.outcome import ENDED, ImportReport, ImportState

# The *_created series double every counter for no use here.
disable_created_metrics()  # type: ignore[no-untyped-call]

REGISTRY = CollectorRegistry(auto_describe=True)

SFTP_SESSIONS = Gauge("rosterdrop_sftp_sessions", "SFTP sessions open now", registry=REGISTRY)
SFTP_LOGINS = Counter(
    "rosterdrop_sftp_logins",
    "SFTP login attempts by result (success, failure, throttled)",
    ["result"],
    registry=REGISTRY,
)
SFTP_REFUSED = Counter(
    "rosterdrop_sftp_connections_refused",
    "Connections closed before the key exchange by reason (startups, per_source, descriptors)",
    ["reason"],
    registry=REGISTRY,
)
SFTP_BYTES = Counter(
    "rosterdrop_sftp_bytes_received", "Bytes written by SFTP clients", registry=REGISTRY
)
SFTP_UPLOADS = Counter(
    "rosterdrop_sftp_uploads",
    "Uploaded files by result (published, aborted, rejected)",
    ["result"],
    registry=REGISTRY,
)


class ImportStates:
    """Imports by state as the database has them, so that those ended by a CLI command
    (approve, reject, import) or another daemon count too. The daemon refreshes the figures
    before each scrape. Ended imports never change state again: the counts only grow."""

    def __init__(self) -> None:
        # None until the database answered: a 0 then the history would read as a reset.
        self.counts: Mapping[ImportState, int] | None = None

    def collect(self) -> Iterator[Metric]:
        if self.counts is None:
            return
        ended = CounterMetricFamily(
            "rosterdrop_imports", "Imports that ended, by final state", labels=["state"]
        )
        for state in sorted(ENDED):
            ended.add_metric([state.value], self.counts.get(state, 0))
        yield ended
        yield GaugeMetricFamily(
            "rosterdrop_imports_paused",
            "Imports paused now, waiting for a person to approve or reject them",
            value=self.counts.get(ImportState.PAUSED, 0),
        )


IMPORT_STATES = ImportStates()
REGISTRY.register(IMPORT_STATES)
IMPORT_DURATION = Histogram(
    "rosterdrop_import_duration_seconds",
    "Time the imports this daemon ran worked, from claiming the upload to the end, without"
    " the time a paused one waited for a decision",
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800),
    registry=REGISTRY,
)
ROWS_APPLIED = Counter(
    "rosterdrop_rows_applied",
    "Roster rows changed by the imports this daemon ran, by entity and change",
    ["entity", "change"],
    registry=REGISTRY,
)
OUTBOX_DEPTH = Gauge("rosterdrop_outbox_depth", "Emails waiting in the outbox", registry=REGISTRY)
OUTBOX_OLDEST_AGE = Gauge(
    "rosterdrop_outbox_oldest_age_seconds",
    "Age of the oldest email waiting in the outbox",
    registry=REGISTRY,
)
EMAILS = Counter(
    "rosterdrop_emails",
    "Emails by delivery result (sent, retry, failed)",
    ["result"],
    registry=REGISTRY,
)
IMPORTS_WAITING_FOR_SPACE = Gauge(
    "rosterdrop_imports_waiting_for_space",
    "Imports stopped by a full disk (or quota), waiting for space to run again",
    registry=REGISTRY,
)
IMPORT_NO_SPACE = Counter(
    "rosterdrop_import_no_space",
    "Import runs stopped by a full disk (or quota); they run again, not counted as attempts",
    registry=REGISTRY,
)

# Several daemons on one database (daemon/cluster): this node's id, the live nodes, takeovers.
CLUSTER_NODE = Gauge(
    "rosterdrop_cluster_node_id", "This node's id in the registry (0: not registered)",
    registry=REGISTRY,
)  # fmt: skip
CLUSTER_LIVE_NODES = Gauge(
    "rosterdrop_cluster_live_nodes", "Nodes whose lease runs, this one included", registry=REGISTRY
)
CLUSTER_TAKEN_OVER = Counter(
    "rosterdrop_cluster_imports_taken_over",
    "Imports of dead nodes this node took over",
    registry=REGISTRY,
)


def record_metrics(report: ImportReport) -> None:
    """What an import this daemon ran took and changed (imports by state: IMPORT_STATES)."""
    if report.state not in ENDED or report.finished_at is None:
        return  # paused, or stopped half-way by a shutdown: it is counted where it ends
    # The work, not the days a paused import may wait for a person: that wait is the
    # district's, and would drown every figure an operator reads from this histogram.
    IMPORT_DURATION.observe(report.duration_seconds or 0.0)
    if report.state in (ImportState.IMPORTED, ImportState.IMPORTED_WITH_ERRORS):
        for name, changes in report.entities.items():
            for change in ("added", "updated", "reactivated", "deactivated"):
                ROWS_APPLIED.labels(entity=name, change=change).inc(getattr(changes, change))
