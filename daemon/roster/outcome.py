"""An import's lifecycle states and the report of where it ended, as plain data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from daemon.roster.entities import Entity
from daemon.roster.plan import EntityChanges
from daemon.roster.problems import Problem
from daemon.roster.thresholds import TrippedThreshold


class ImportState(StrEnum):
    RECEIVED = "received"
    VALIDATING = "validating"
    FAILED = "failed"
    PAUSED = "paused"
    APPROVED = "approved"
    IMPORTING = "importing"
    IMPORTED = "imported"
    IMPORTED_WITH_ERRORS = "imported_with_errors"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"

    @property
    def ended(self) -> bool:
        return self in ENDED


ENDED = frozenset(
    {
        ImportState.FAILED,
        ImportState.IMPORTED,
        ImportState.IMPORTED_WITH_ERRORS,
        ImportState.REJECTED,
        ImportState.SUPERSEDED,
    }
)
# States a restart picks up and carries on from (paused waits for a person instead).
RESUMABLE = frozenset(
    {ImportState.RECEIVED, ImportState.VALIDATING, ImportState.APPROVED, ImportState.IMPORTING}
)


# How people see an import's input format (imports.source_format).
FORMAT_LABELS = {"clever": "Clever CSV", "oneroster": "OneRoster CSV"}


def format_label(source_format: str) -> str:
    return FORMAT_LABELS.get(source_format, source_format)


@dataclass(frozen=True)
class FileSummary:
    """One of the five files: data rows read, rows skipped for errors, warnings.

    A OneRoster file feeds several entities (users.csv: students and teachers): each gets a
    summary of its own, labelled "users.csv (students)", whose `entity` names what it fed."""

    file: str
    rows: int = 0
    errors: int = 0
    warnings: int = 0
    entity: str | None = None  # None: the entities whose file this is (the Clever files)

    def feeds(self, entity: Entity) -> bool:
        """Whether this file's rows are `entity`'s records."""
        return entity.name == self.entity if self.entity else entity.file == self.file


@dataclass(frozen=True)
class ImportReport:
    """Everything a person is told about one import: the emails, the CLI and the web show this."""

    import_id: int
    tenant: str
    state: ImportState
    source: str
    received_at: datetime
    finished_at: datetime | None = None
    started_at: datetime | None = None
    files: tuple[FileSummary, ...] = ()
    entities: Mapping[str, EntityChanges] = field(default_factory=dict)
    tripped: tuple[TrippedThreshold, ...] = ()
    problems: tuple[Problem, ...] = ()  # the first ones; the CSV has them all
    problem_totals: Mapping[str, int] = field(default_factory=dict)
    fatal_reason: str | None = None
    report_csv: Path | None = None
    superseded_by: int | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    work_seconds: float | None = None  # the time it worked, not the time it waited for a person
    source_format: str = "clever"  # the upload's input format: clever or oneroster

    @property
    def duration_seconds(self) -> float | None:
        """How long the import took: its work, once it ended (an older record without that
        figure: from its start to its finish)."""
        if self.finished_at is None:
            return None
        if self.work_seconds is not None:
            return self.work_seconds
        start = self.started_at or self.received_at
        return max(0.0, (self.finished_at - start).total_seconds())
