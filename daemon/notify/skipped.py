"""What the emails say happens to the records of rows skipped for errors: held, or deactivated.

A skipped row does not always leave its record alone: a student whose row names an unknown
school is deactivated, with their enrollments. The plan counts both outcomes; these sentences
repeat its counts, in the past tense for an applied import and the conditional for a paused one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from daemon.notify.figures import ENTITY_LABELS, plural
from daemon.roster.entities import ENTITIES
from daemon.roster.outcome import FileSummary
from daemon.roster.plan import EntityChanges


def rows_with_errors(files: Sequence[FileSummary], totals: Mapping[str, int]) -> int:
    """Rows skipped for errors; a report without per-file figures has only its error count."""
    return sum(f.errors for f in files) if files else totals.get("error", 0)


def what_skipping_does(
    rows: int, entities: Mapping[str, EntityChanges], *, applied: bool
) -> list[str]:
    """The sentences about `rows` skipped rows and the records they describe."""
    # A row with an error costs its record, one value or one teacher link (docs/problems.md):
    # "skipped" would be untrue of most of them.
    skipped = f"{plural(rows, 'row')} with errors" if rows else "Rows with errors"
    was = "was" if rows == 1 else "were"
    sentences = [
        f"{skipped} {was if applied else 'would'} not {'' if applied else 'be '}imported whole."
    ]
    held = _counts(entities, "held", minus="held_new")
    if held:
        one = _single(held)
        if applied:
            kept = "was held: kept as it was" if one else "were held: kept as they were"
        else:
            kept = "would be held: kept as it is" if one else "would be held: kept as they are"
        sentences.append(f"{_join(held)} {kept}.")
    new = _counts(entities, "held_new")
    if new:
        one = _single(new)
        verb = ("was" if one else "were") if applied else "would"
        why = "it is new and its row" if one else "they are new and their rows"
        skip = ("was" if one else "were") if applied else "would be"
        be = "" if applied else "be "
        sentences.append(f"{_join(new)} {verb} not {be}imported: {why} {skip} skipped.")
    gone = _counts(entities, "deactivated_skipped")
    if gone:
        one = _single(gone)
        if applied:
            verb = "was" if one else "were"
            listed = "the files still listed it" if one else "the files still listed them"
            why = "its row was skipped" if one else "their rows were skipped"
            sentences.append(f"{_join(gone)} {verb} deactivated although {listed}: {why}.")
        else:
            listed = "the files list it" if one else "the files list them"
            why = "its row would be skipped" if one else "their rows would be skipped"
            sentences.append(f"{_join(gone)} would be deactivated although {listed}: {why}.")
    return sentences


def _counts(
    entities: Mapping[str, EntityChanges], field: str, minus: str | None = None
) -> list[tuple[int, str]]:
    """(count, entity) of every entity with a non-zero `field` (less `minus`), in the order
    of the files."""
    names = [e.name for e in ENTITIES if e.name in entities]
    counts = [
        (int(getattr(entities[n], field)) - (int(getattr(entities[n], minus)) if minus else 0), n)
        for n in names
    ]
    return [(count, name) for count, name in counts if count]


def _single(counts: list[tuple[int, str]]) -> bool:
    return len(counts) == 1 and counts[0][0] == 1


def _join(counts: list[tuple[int, str]]) -> str:
    parts = [_records(count, name) for count, name in counts]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _records(count: int, entity: str) -> str:
    label = ENTITY_LABELS.get(entity, entity)
    return plural(count, label.removesuffix("s"), label)
