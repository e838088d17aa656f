"""Normalisation notes of plain rows, counted column-wise and merged with the careful rows'."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from daemon.clever.cells import Notes
from daemon.clever.reader import CsvFile


@dataclass(frozen=True)
class Note:
    """One kind of note over plain rows: how many, and the first one's line and value.
    `rank` is its place among the notes a single row can get (the careful path's order)."""

    column: str
    code: str
    detail: str
    line: int
    value: str
    count: int
    rank: int


def first_of(
    frame: pl.DataFrame,
    noted: pl.Expr,
    value: pl.Expr,
    column: str,
    code: str,
    detail: str,
    rank: int,
) -> list[Note]:
    """The note `code` on the rows where `noted` holds, if any."""
    rows = frame.filter(noted).select(pl.col("line"), value.alias("value"))
    if rows.height == 0:
        return []
    line, text = rows.row(0)
    return [Note(column, code, detail, line, text, rows.height, rank)]


def merge(notes: Notes, f: CsvFile, plain: list[Note]) -> None:
    """Add the plain rows' notes to those the careful rows made, in row-by-row order."""
    ranks = {}
    for n in plain:
        notes.note(f.name, n.column, n.code, n.detail, n.line, n.value, n.count)
        ranks[((f.name, n.column, n.code, n.detail), n.line)] = n.rank
    if plain:
        notes.reorder(lambda kind, line, position: ranks.get((kind, line), position))
