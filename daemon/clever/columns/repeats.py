"""Repeated enrollments, found as the rows go by instead of by a GROUP BY over the stage.

Every staged enrollment's key (plain rows from the engine's frames, careful ones as the
careful path writes them) is hashed with its line. Only the lines whose hash occurs twice
can repeat a key; the stage checks those few exactly (`Stage.duplicates(among=...)`): a
collision costs a look, never a wrong answer. polars' hash is stable within a process only,
which is all it is used for: it is never stored.
"""

from __future__ import annotations

import polars as pl

from daemon.clever.cells import Row
from daemon.clever.columns.text import joined
from daemon.roster.entities import ENROLLMENTS

_KEY = ENROLLMENTS.key
_SCHEMA = {**dict.fromkeys(_KEY, pl.String), "line": pl.Int64}


def _hashed(records: pl.DataFrame) -> pl.DataFrame:
    """12 bytes a row: 700,000 enrollments in 8 MB (careful rows too, a batch at a time)."""
    return records.select(
        joined(*(pl.col(k) for k in _KEY)).hash().alias("hash"), pl.col("line").cast(pl.Int32)
    )


# Careful rows are hashed this many at a time: as Python tuples, 700,000 of them took 189 MB.
CAREFUL_BATCH_ROWS = 20_000


class Repeats:
    """The (hash, line) of every enrollment staged so far."""

    def __init__(self) -> None:
        self._hashed: list[pl.DataFrame] = []
        self._careful: list[tuple[object, ...]] = []

    def plain(self, records: pl.DataFrame) -> None:
        """Plain records, in the columns `enrollments` gives them."""
        self._hashed.append(_hashed(records))

    def careful(self, row: Row) -> None:
        """A row the careful path staged (fresh or held): its key, then its line."""
        self._careful.append((*row[: len(_KEY)], row[len(_KEY)]))
        if len(self._careful) >= CAREFUL_BATCH_ROWS:
            self._hash_careful()

    def _hash_careful(self) -> None:
        careful = pl.DataFrame(self._careful, schema=_SCHEMA, orient="row")
        self._hashed.append(_hashed(careful))
        self._careful = []

    def candidates(self) -> list[int]:
        """The lines whose key may repeat another staged row's, in line order."""
        self._hash_careful()
        every = pl.concat(self._hashed)
        self._hashed = []
        # Sorted, a repeated hash sits next to its twin: no hash table of every row.
        hashes = every.get_column("hash").sort()
        twins = hashes.filter(hashes == hashes.shift(1))
        if twins.is_empty():
            return []
        repeated = every.filter(pl.col("hash").is_in(twins.unique().implode()))
        return sorted(repeated.get_column("line").to_list())
