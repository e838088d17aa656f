"""The numbers an email shows: per-file counts with percentages, times and durations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from daemon.roster.entities import ENTITIES
from daemon.roster.outcome import FileSummary
from daemon.roster.plan import EntityChanges

# sections.csv also yields the section-teacher links; they get a line of their own.
LINK_ENTITY = "section_teachers"
ENTITY_LABELS = {
    "schools": "schools",
    "teachers": "teachers",
    "students": "students",
    "sections": "sections",
    LINK_ENTITY: "section teacher assignments",
    "enrollments": "enrollments",
}
# Held: records whose rows were skipped for an error, kept as they were.
COLUMNS = ("added", "reactivated", "updated", "deactivated", "unchanged", "held", "errors")
ROWS_READ = ("row read", "rows read")
TEACHER_LINKS = ("teacher link", "teacher links")
PERCENT_NOTE = (
    "Percentages are of the rows read from each file, except Deactivated: "
    "of the records that were active before this import."
)


@dataclass(frozen=True)
class Cell:
    """A count and what it is a share of; `count` None means the figure does not apply."""

    name: str
    count: int | None
    base: int

    @property
    def value(self) -> str:
        return "—" if self.count is None else f"{self.count:,}"

    @property
    def percent(self) -> str:
        if self.count is None or self.base <= 0:
            return ""
        share = 100.0 * self.count / self.base
        # Never round a few rows away to 0.0% or a nearly complete file up to 100%.
        if 0 < share < 0.1:
            return "<0.1%"
        if 99.9 < share < 100:
            return ">99.9%"
        return f"{share:.1f}%"


@dataclass(frozen=True)
class FileFigures:
    """One line of the per-file table: a file (or the teacher links of sections.csv)."""

    label: str
    rows: int
    rows_noun: tuple[str, str]  # singular and plural: ("row read", "rows read")
    cells: tuple[Cell, ...]

    @property
    def read(self) -> str:
        """What was read, counted: "1 row read", "2,000 rows read"."""
        return plural(self.rows, *self.rows_noun)


def file_figures(
    files: Sequence[FileSummary], entities: Mapping[str, EntityChanges]
) -> list[FileFigures]:
    """The table of every file read, with the plan's changes where a plan was made."""
    lines: list[FileFigures] = []
    for summary in files:
        planned = [e.name for e in ENTITIES if summary.feeds(e) and e.name in entities]
        main = next((name for name in planned if name != LINK_ENTITY or summary.entity), None)
        changes = entities[main] if main else None
        lines.append(
            FileFigures(
                summary.file, summary.rows, ROWS_READ, _cells(summary, changes, bool(entities))
            )
        )
        if LINK_ENTITY in planned and not summary.entity:
            links = entities[LINK_ENTITY]
            in_upload = links.added + links.reactivated + links.updated + links.unchanged
            in_upload += links.held
            lines.append(
                FileFigures(
                    f"{summary.file} ({ENTITY_LABELS[LINK_ENTITY]})",
                    in_upload,
                    TEACHER_LINKS,
                    (*_change_cells(links, in_upload), Cell("errors", None, 0)),
                )
            )
    return lines


def _cells(summary: FileSummary, changes: EntityChanges | None, planned: bool) -> tuple[Cell, ...]:
    errors = Cell("errors", summary.errors, summary.rows)
    if not planned:  # no plan was made (a failed import): there are only rows and errors
        return (errors,)
    if changes is None:
        return (*(Cell(name, None, 0) for name in COLUMNS[:-1]), errors)
    return (*_change_cells(changes, summary.rows), errors)


def _change_cells(changes: EntityChanges, rows: int) -> tuple[Cell, ...]:
    return (
        Cell("added", changes.added, rows),
        Cell("reactivated", changes.reactivated, rows),
        Cell("updated", changes.updated, rows),
        Cell("deactivated", changes.deactivated, changes.active_before),
        Cell("unchanged", changes.unchanged, rows),
        Cell("held", changes.held, rows),
    )


def as_utc(moment: datetime) -> datetime:
    """Times without a zone are UTC, as the database keeps them."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def when(moment: datetime | None) -> str:
    """A time as districts read it in an email: to the minute, in UTC, zone spelled out."""
    return "" if moment is None else as_utc(moment).strftime("%Y-%m-%d %H:%M UTC")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    whole = round(seconds)
    if whole == 0:
        return "under a second"
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days"


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"
