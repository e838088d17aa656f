"""Undo in tests: asking for one as `imports undo` does, and the roster's state to compare."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from daemon import undo
from daemon.pipeline import Pipeline
from daemon.roster.entities import BY_NAME
from daemon.roster.outcome import ImportReport
from daemon.store.database import Database
from tests.support.roster import tables

# The roster's own bookkeeping, last in every row: created/changed import and time.
BOOKKEEPING = 4

State = dict[str, dict[tuple[Any, ...], tuple[Any, ...]]]


def run_undo(pipeline: Pipeline, import_id: int, *, back_to: bool = False) -> ImportReport:
    return pipeline.run(undo.ask(pipeline, import_id, back_to=back_to))


def state(db: Database, tenant: str) -> State:
    """Every record of the tenant, active or not: key -> (every field, active)."""
    out: State = {}
    for name, rows in tables(db, tenant).items():
        width = len(BY_NAME[name].key)
        out[name] = {row[1 : 1 + width]: row[1 + width : -BOOKKEEPING] for row in rows}
    return out


def assert_restored(now: State, before: State) -> None:
    """`now` is exactly `before`: every record that existed has every value and active state
    it had; a record that did not exist then is inactive (records are never deleted)."""
    for name, rows in now.items():
        for key, values in rows.items():
            if key in before[name]:
                assert values == before[name][key], (name, key)
            else:
                assert values[-1] is False, (name, key, "did not exist, yet is active")
        assert before[name].keys() <= rows.keys(), name


def add_extra_column(folder: Path, file: str, column: str, values: dict[str, str]) -> None:
    """Give `file` an extra column (a full Clever export's `state_id`, …): value per id in
    its second column."""
    path = folder / file
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    rows[0].append(column)
    for row in rows[1:]:
        row.append(values.get(row[1], ""))
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
