"""What the vectorised rules of one file give: which rows are plain, and their records."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from daemon.clever.checks import Checker
from daemon.clever.columns.notes import Note
from daemon.clever.columns.text import join_keys
from daemon.roster.entities import SCHOOLS, Entity


def passed(frame: pl.DataFrame, mask: pl.Series) -> pl.DataFrame:
    """The rows `mask` passes: the frame itself when it passes them all (a clean file's
    usual case), rather than a copy of every column."""
    return frame if mask.all() else frame.filter(mask)


@dataclass
class Plain:
    """`mask`: the rows whose records are `records` (per entity, in `stage_columns`), with
    the notes they make; every other row goes down the careful path."""

    mask: pl.Series
    records: dict[str, pl.DataFrame]
    notes: list[Note] = field(default_factory=list)


@dataclass
class Known:
    """Joined keys (see `text.KEY_JOIN`) of the records imported so far, per entity: what a
    reference must name for its row to be plain (a held record's dependents need care)."""

    c: Checker
    keys: dict[str, pl.Series] = field(default_factory=dict)

    def schools(self) -> pl.Series:
        held = self.c.held[SCHOOLS.name]
        return pl.Series([s for s in self.c.schools if (s,) not in held], dtype=pl.String)

    def imported(self, entity: Entity) -> pl.Series:
        keys = self.keys.get(entity.name, pl.Series([], dtype=pl.String))
        held = self.c.held[entity.name]
        if held:
            keys = keys.filter(~keys.is_in(join_keys(list(held)).implode()))
        return keys
