"""What a Check Your Data email explains: each tripped threshold and what to look at first."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from daemon.notify.figures import ENTITY_LABELS, plural
from daemon.notify.skipped import what_skipping_does
from daemon.roster.entities import BY_NAME
from daemon.roster.plan import EntityChanges
from daemon.roster.thresholds import TrippedThreshold

MOST_CHANGED_FIELDS = 3


@dataclass(frozen=True)
class ThresholdLine:
    entity: str
    change: str
    count: str
    percent: str
    limit: str
    sentence: str


def threshold_line(tripped: TrippedThreshold) -> ThresholdLine:
    if tripped.rule == "row_errors":
        known = tripped.total > 0  # a pause recorded before the rows read were kept has none
        return ThresholdLine(
            entity="all files",
            change="not imported whole (rows with errors)",
            count=f"{tripped.count:,} of {tripped.total:,} read" if known else f"{tripped.count:,}",
            percent=tripped.share if known else "",
            limit=f"{plural(int(tripped.limit), 'row')} allowed",
            sentence=tripped.describe(),
        )
    if tripped.rule == "window":
        return ThresholdLine(
            entity="pause window",
            change="held until the window ends",
            count="",
            percent="",
            limit="approve to apply it now",
            sentence=tripped.describe(),
        )
    at = f" at {tripped.where}" if tripped.school else ""
    return ThresholdLine(
        entity=_label(tripped.entity) + at,
        change="deactivated" if tripped.rule == "deactivate" else "changed",
        count=f"{tripped.count:,} of {tripped.total:,}",
        percent=tripped.share,
        limit=f"{tripped.limit:g}%",
        sentence=tripped.describe(),
    )


def what_to_check(tripped: TrippedThreshold, entities: Mapping[str, EntityChanges]) -> str:
    """One piece of advice per tripped threshold, in the district's words."""
    label = _label(tripped.entity)
    file = BY_NAME[tripped.entity].file if tripped.entity in BY_NAME else "the files"
    if tripped.rule == "window":
        return (
            "Nothing is applied during a pause window (the school year's rollover): when it"
            " ends, the newest upload held in it is checked against the roster as it is then"
            " and imported, or paused if it trips a threshold. Approve it to apply it now."
        )
    if tripped.rule == "deactivate" and tripped.school:
        return (
            f"{tripped.count:,} of the {tripped.total:,} active {label} at {tripped.where}"
            f" would be deactivated, although the district as a whole stays under"
            f" {tripped.limit:g}%. That usually means the export left the school out, or"
            f" {file} was cut short: check the SIS export's school selection."
        )
    if tripped.rule == "deactivate":
        return _deactivations(tripped, entities.get(tripped.entity), label, file)
    if tripped.rule == "update":
        fields = _most_changed(entities.get(tripped.entity))
        most = f" (most changed: {fields})" if fields else ""
        return (
            f"{tripped.count:,} of {tripped.total:,} {label} would change{most}. So many changes at"
            " once usually mean the SIS changed how it writes a column: compare a few of them"
            " with the SIS before approving."
        )
    told = what_skipping_does(tripped.count, entities, applied=False)
    return " ".join(
        [
            *told,
            "The first problems are listed below and all of them are in the attached CSV:"
            " fix them in the SIS and export again, or approve to import the rest now.",
        ]
    )


def _deactivations(
    tripped: TrippedThreshold, changes: EntityChanges | None, label: str, file: str
) -> str:
    """Why records would go: missing from their file, or listed on rows skipped for errors
    (the plan's `deactivated_skipped`), with the advice each cause calls for."""
    named = min(changes.deactivated_skipped, tripped.count) if changes else 0
    absent = tripped.count - named
    why, advice = [], []
    if absent:
        why.append(f"{absent:,} {'is' if absent == 1 else 'are'} not in {file}")
        advice.append(
            "That usually means the export left something out: check that the SIS export"
            f" selects every school and grade, and that {file} was not cut short."
        )
    if named:  # the file lists them, on rows skipped for an error
        one = named == 1
        rows = f"is in {file} on a row" if one else f"are in {file} on rows"
        why.append(f"{named:,} {rows} skipped for an error")
        advice.append(
            "That row is among the problems below: fixed in the SIS and exported again, it"
            " keeps its record."
            if one
            else "Those rows are among the problems below: fixed in the SIS and exported"
            " again, they keep their records."
        )
    share = f"{tripped.count:,} of {tripped.total:,} active {label} would be deactivated"
    return f"{share}: {' and '.join(why)}. {' '.join(advice)}"


def _label(entity: str) -> str:
    return ENTITY_LABELS.get(entity, entity)


def _most_changed(changes: EntityChanges | None) -> str:
    if changes is None or not changes.field_changes:
        return ""
    ranked = sorted(changes.field_changes.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(
        f"{name.replace('_', ' ')} {count:,}" for name, count in ranked[:MOST_CHANGED_FIELDS]
    )
