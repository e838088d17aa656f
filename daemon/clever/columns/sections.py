"""sections.csv column-wise: `Checker.section_row`'s rules as masks, and the teacher links."""

from __future__ import annotations

import polars as pl

from daemon.clever.cells import MAX_ID, MAX_TEXT
from daemon.clever.columns.notes import Note, first_of
from daemon.clever.columns.plain import Known, Plain, passed
from daemon.clever.columns.text import (
    cleaned_key,
    extras_json,
    fits,
    joined,
    per_distinct,
    required,
    series,
    tidy_row,
    value,
)
from daemon.clever.reader import CsvFile
from daemon.clever.values import parse_date
from daemon.roster.entities import SECTION_TEACHERS, SECTIONS, TEACHERS

_DATES = ("term_start", "term_end")


def _iso(raw: str) -> str | None:
    """A term date as the careful path writes it ("" when empty), None when it is bad."""
    if not raw:
        return ""
    parsed = parse_date(raw) if len(raw) <= MAX_ID else None
    return parsed.isoformat() if parsed else None


def sections(known: Known, f: CsvFile, frame: pl.DataFrame) -> Plain:
    c = known.c
    school = value(f, "school_id")
    teachers = [(1, value(f, "teacher_id"))] + [(n, value(f, name)) for n, name in f.co_teachers]
    frame = frame.with_columns(
        _key=cleaned_key(frame, f, SECTIONS.key),
        **{
            f"_{name}": per_distinct(series(frame, value(f, name)), _iso, pl.String)
            for name in _DATES
        },
    )
    imported = known.imported(TEACHERS).implode()
    plain = (
        tidy_row(f)
        & pl.col("_key").is_not_null()
        & ~pl.col("_key").is_duplicated()
        & school.is_in(known.schools().implode())
        & required(value(f, "teacher_id"), MAX_ID)
    )
    for i, (_, teacher) in enumerate(teachers):
        plain &= fits(teacher, MAX_ID)
        plain &= (teacher == "") | joined(school, teacher).is_in(imported)
        for _, other in teachers[i + 1 :]:
            plain &= (teacher == "") | (teacher != other)  # listed twice: a warning
    course, name = value(f, "course_name"), value(f, "name")
    plain &= fits(course, MAX_TEXT) & ((course != "") | required(name))
    start, end = pl.col("_term_start"), pl.col("_term_end")
    plain &= start.is_not_null() & end.is_not_null()
    plain &= (start == "") | (end == "") | (start <= end)
    mask = frame.select(plain.fill_null(False)).to_series()
    rows = passed(frame, mask)
    notes: list[Note] = first_of(
        rows,
        course == "",
        name,
        "course_name",
        "course_name_from_name",
        "course_name empty: the section's Name used instead",
        0,
    )
    for rank, column in enumerate(_DATES, start=1):
        raw, iso = value(f, column), pl.col(f"_{column}")
        notes += first_of(
            rows, iso != raw, raw, column, "date_normalised", "dates rewritten as YYYY-MM-DD", rank
        )
    records = rows.select(
        school.alias("school_id"),
        value(f, "section_id").alias("section_id"),
        value(f, "teacher_id").alias("teacher_id"),
        pl.when(course != "").then(course).otherwise(name).alias("course_name"),
        pl.when(start != "").then(start).alias("term_start"),
        pl.when(end != "").then(end).alias("term_end"),
        extras_json(f, c.settings.keep_extra_columns).alias("extra"),
        pl.col("line"),
        pl.lit(False).alias("held"),
        pl.lit(None, pl.String).alias("kept"),
    )
    links = pl.concat(
        [
            rows.filter(teacher != "").select(
                school.alias("school_id"),
                value(f, "section_id").alias("section_id"),
                teacher.alias("teacher_id"),
                pl.lit(position, pl.Int64).alias("position"),
                pl.col("line"),
                pl.lit(False).alias("held"),
                pl.lit(None, pl.String).alias("kept"),
            )
            for position, teacher in teachers
        ]
    )
    return Plain(mask, {SECTIONS.name: records, SECTION_TEACHERS.name: links}, notes)
