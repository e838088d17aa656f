#!/usr/bin/env python3
"""Corrupt a generated district the ways real exports go wrong, for engines to agree on.

Quoted line breaks, rows of the wrong width, padded and tab-filled values, repeated ids,
references to nobody, bad grades, emails and dates, blank-ish rows, and one file saved as
Windows-1252. Every choice comes from `seed`, so a run is repeatable.
"""

from __future__ import annotations

import argparse
import csv
import random
from collections.abc import Callable
from pathlib import Path

Row = list[str]


def _rewrite(path: Path, change: Callable[[int, Row], list[Row]], encoding: str = "utf-8") -> None:
    with path.open(encoding="utf-8", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    out: list[Row] = [header]
    for n, row in enumerate(rows):
        out.extend(change(n, row))
    with path.open("w", encoding=encoding, newline="") as handle:
        csv.writer(handle, lineterminator="\r\n").writerows(out)


def corrupt(folder: Path, *, rate: float = 0.01, seed: int = 11) -> None:
    """Spoil about `rate` of the rows of each file in place (students.csv as Windows-1252)."""
    rng = random.Random(seed)

    def spoil(kinds: list[Callable[[Row], list[Row]]]) -> Callable[[int, Row], list[Row]]:
        def change(_: int, row: Row) -> list[Row]:
            if rng.random() >= rate:
                return [row]
            return rng.choice(kinds)(list(row))

        return change

    def at(i: int, value: str) -> Callable[[Row], list[Row]]:
        return lambda row: [[*row[:i], value, *row[i + 1 :]]]

    def padded(i: int) -> Callable[[Row], list[Row]]:
        return lambda row: [[*row[:i], f" {row[i]}\t", *row[i + 1 :]]]

    def split(i: int) -> Callable[[Row], list[Row]]:
        return lambda row: [[*row[:i], row[i][:2] + "\r\n" + row[i][2:], *row[i + 1 :]]]

    def twice(row: Row) -> list[Row]:
        return [row, row]

    def wide(row: Row) -> list[Row]:
        return [[*row, "stray"]]

    def narrow(row: Row) -> list[Row]:
        return [row[:-1]]

    def blank(row: Row) -> list[Row]:
        return [row, [""] * len(row)]

    common = [twice, wide, narrow, padded(0), padded(1), at(0, "NOSCHOOL"), blank]
    _rewrite(folder / "teachers.csv", spoil([*common, at(4, "not-an-email"), split(2), at(3, "")]))
    _rewrite(
        folder / "students.csv",
        spoil(
            [*common, at(6, "Z9"), at(4, "bad@"), at(2, "Ren\u00e9e"), split(3), at(2, "A\x0bB")]
        ),
        encoding="windows-1252",
    )
    _rewrite(
        folder / "sections.csv",
        spoil([*common, at(2, "NOTEACHER"), at(5, "2026-13-01"), at(4, "Math\x7f"), split(4)]),
    )
    _rewrite(
        folder / "enrollments.csv",
        spoil([*common, at(2, "NOSTUDENT"), at(1, "NOSECTION"), at(2, "\u00a0" + "S1")]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--rate", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    corrupt(args.folder, rate=args.rate, seed=args.seed)


if __name__ == "__main__":
    main()
