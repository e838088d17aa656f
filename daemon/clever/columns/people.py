"""teachers.csv and students.csv column-wise: `Checker.person_row`'s rules as masks."""

from __future__ import annotations

import polars as pl

from daemon.clever.cells import MAX_ID
from daemon.clever.columns.notes import Note, first_of
from daemon.clever.columns.plain import Known, Plain, passed
from daemon.clever.columns.text import (
    cleaned_key,
    extras_json,
    fits,
    per_distinct,
    required,
    series,
    tidy_row,
    value,
)
from daemon.clever.reader import CsvFile
from daemon.clever.values import MAX_EMAIL, valid_email
from daemon.roster.entities import STUDENTS, Entity

# `values._ASCII_EMAIL` for ASCII text, its `\s` spelled as Python's ASCII white space.
_ASCII_EMAIL = (
    r"\A[^\t\n\x0b\x0c\r\x1c-\x1f @\"(),:;<>\[\\\]]+"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}\z"
)


def emails(addresses: pl.Series) -> pl.DataFrame:
    """Whether each address is valid, and lower-cased: ASCII ones in Rust (the same rule),
    the others once per distinct value with `valid_email` and `str.lower`."""
    out = pl.DataFrame({"email": addresses}).with_columns(
        valid=pl.col("email").str.contains(_ASCII_EMAIL)
        & (pl.col("email").str.len_bytes() <= MAX_EMAIL),
        lowered=pl.col("email").str.to_lowercase(),
        wide=pl.col("email").str.contains(r"[^\x00-\x7f]"),
    )
    wide = out.get_column("wide")
    if wide.any():
        others = out.get_column("email").filter(wide)
        at = wide.arg_true()
        out = out.with_columns(
            out.get_column("valid").scatter(at, per_distinct(others, valid_email, pl.Boolean)),
            out.get_column("lowered").scatter(at, per_distinct(others, str.lower, pl.String)),
        )
    return out.select("valid", "lowered")


def people(known: Known, f: CsvFile, frame: pl.DataFrame, entity: Entity) -> Plain:
    c = known.c
    student = entity is STUDENTS
    email_column = "student_email" if student else "teacher_email"
    email = value(f, email_column)
    checked = emails(series(frame, email))
    frame = frame.with_columns(
        _key=cleaned_key(frame, f, entity.key),
        _valid=checked.get_column("valid"),
        _lowered=checked.get_column("lowered"),
        _grade=per_distinct(
            series(frame, value(f, "grade")),
            lambda v: "" if not v else c.grade_code(v) if len(v) <= MAX_ID else None,
            pl.String,
        )
        if student
        else pl.lit(""),
    )
    key = pl.col("_key")
    plain = (
        tidy_row(f)
        & key.is_not_null()
        & ~key.is_duplicated()
        & value(f, "school_id").is_in(known.schools().implode())
        & required(value(f, "first_name"))
        & required(value(f, "last_name"))
    )
    if student:
        username = value(f, "username")
        plain &= (
            fits(username, MAX_ID)
            & pl.col("_grade").is_not_null()
            & ((email == "") | pl.col("_valid"))
            & ((email != "") | (username != ""))
        )
    else:
        plain &= (email != "") & pl.col("_valid")
    mask = frame.select(plain.fill_null(False)).to_series()
    rows = passed(frame, mask)
    notes = first_of(
        rows,
        pl.col("_lowered") != email,
        email,
        email_column,
        "email_lowercased",
        "email addresses lower-cased",
        0,
    )
    if student:
        notes += _grade_notes(rows, f)
    logins = (
        [
            pl.col("_lowered").alias("email"),
            value(f, "username").alias("username"),
            pl.col("_grade").alias("grade"),
        ]
        if student
        else [pl.col("_lowered").alias("email")]
    )
    records = rows.select(
        value(f, "school_id").alias("school_id"),
        value(f, entity.key[1]).alias(entity.key[1]),
        value(f, "first_name").alias("first_name"),
        value(f, "last_name").alias("last_name"),
        *logins,
        extras_json(f, c.settings.keep_extra_columns).alias("extra"),
        pl.col("line"),
        pl.lit(False).alias("held"),
        pl.lit(None, pl.String).alias("kept"),
    )
    return Plain(mask, {entity.name: records}, notes)


def _grade_notes(rows: pl.DataFrame, f: CsvFile) -> list[Note]:
    grade = value(f, "grade")
    replaced = rows.filter((grade != "") & (pl.col("_grade") != grade))
    notes: list[Note] = []
    for raw, code in replaced.select(grade, pl.col("_grade")).unique().rows():
        detail = f"grade {raw!r} replaced by {code!r}"
        notes += first_of(
            replaced,
            (grade == raw) & (pl.col("_grade") == code),
            grade,
            "grade",
            "grade_replaced",
            detail,
            1,
        )
    return notes
