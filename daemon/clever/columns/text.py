"""The text rules of `clever.cells` as column expressions: which values need no cleaning,
what a key cleans to, extra columns as JSON, values checked once per distinct value.

A value is *tidy* when the careful path would return it unchanged: no control character,
no white space that `str.strip` removes at its ends (`\\x1c`-`\\x1f`, NBSP, … as Python
counts it, spelled out: Rust's `\\s` is another set). Only tidy rows are plain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from json.encoder import encode_basestring as json_string
from typing import Any

import polars as pl

from daemon.clever.cells import MAX_ID, MAX_TEXT
from daemon.clever.columns.parse import column
from daemon.clever.reader import CsvFile
from daemon.clever.values import clean_text, has_control

# Everything `str.strip` removes and `values.has_control` finds, and ZERO WIDTH SPACE.
UNUSUAL = (
    r"[\x01-\x1f\x7f\x85\xa0\x{1680}\x{2000}-\x{200b}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]"
)
# NUL never gets here (a file holding one is fatal), so it joins two parts of a key.
KEY_JOIN = "\x00"


def value(f: CsvFile, name: str) -> pl.Expr:
    """A column by its header name; "" in every row when the header lacks it."""
    position = f.index.get(name)
    return pl.col(column(position)) if position is not None else pl.lit("")


def untidy(expr: pl.Expr) -> pl.Expr:
    return expr.str.contains(UNUSUAL) | expr.str.starts_with(" ") | expr.str.ends_with(" ")


def tidy_row(f: CsvFile) -> pl.Expr:
    """No value of the row, extra and secret columns included, needs cleaning."""
    return ~pl.any_horizontal(untidy(pl.col(column(i))) for i in range(f.width))


def fits(expr: pl.Expr, limit: int) -> pl.Expr:
    return expr.str.len_chars() <= limit


def required(expr: pl.Expr, limit: int = MAX_TEXT) -> pl.Expr:
    return (expr != "") & fits(expr, limit)


def joined(*parts: pl.Expr) -> pl.Expr:
    return pl.concat_str(list(parts), separator=KEY_JOIN)


def join_keys(keys: Sequence[tuple[str, ...]]) -> pl.Series:
    return pl.Series([KEY_JOIN.join(key) for key in keys], dtype=pl.String)


def per_distinct(values: pl.Series, rule: Callable[[str], Any], dtype: Any) -> pl.Series:
    """`rule` applied once per distinct value (a grade column holds a dozen of them)."""
    mapping = {v: rule(v) for v in values.unique().to_list()}
    return values.replace_strict(mapping, return_dtype=dtype)


def careful_key_part(raw: str) -> str | None:
    """What `Cells.text` makes of a required id: its cleaned value, or None when the row
    would be skipped before its key counts (empty, too long, running over lines)."""
    cleaned = raw.strip()
    if "\n" in cleaned or "\r" in cleaned:
        return None
    if has_control(cleaned):
        cleaned = clean_text(cleaned)
    return cleaned if cleaned and len(cleaned) <= MAX_ID else None


def cleaned_key(frame: pl.DataFrame, f: CsvFile, names: Sequence[str]) -> pl.Series:
    """Each row's key as the careful path sees it (parts joined; null when it has none):
    a padded id that cleans to another row's id repeats it."""
    parts = []
    for name in names:
        raw = frame.get_column(column(f.index[name]))
        needs = frame.select(untidy(pl.col(raw.name))).to_series()
        part = raw.set((raw == "") | (raw.str.len_chars() > MAX_ID), None)
        if needs.any():
            fixed = per_distinct(raw.filter(needs), careful_key_part, pl.String)
            part = part.scatter(needs.arg_true(), fixed)
        parts.append(part)
    return pl.select(joined(*(pl.lit(p) for p in parts))).to_series()


def extras_json(f: CsvFile, keep: bool) -> pl.Expr:
    """`Cells.extras_json` for tidy rows: the non-empty extra columns, keys sorted."""
    if not f.extra or not keep:
        return pl.lit(None, pl.String)
    pieces = []
    for position, name in f.extra:
        raw = pl.col(column(position))
        text = raw.str.replace_all("\\", "\\\\", literal=True).str.replace_all(
            '"', '\\"', literal=True
        )
        pieces.append(
            pl.when(raw != "").then(
                pl.concat_str([pl.lit(json_string(name) + ': "'), text, pl.lit('"')])
            )
        )
    body = pl.concat_str(pieces, separator=", ", ignore_nulls=True)
    return pl.when(body == "").then(None).otherwise(pl.concat_str([pl.lit("{"), body, pl.lit("}")]))


def series(frame: pl.DataFrame, expr: pl.Expr) -> pl.Series:
    """`expr` over the frame, a literal (an absent column) repeated in every row."""
    return frame.with_columns(expr.alias("_series")).get_column("_series")
