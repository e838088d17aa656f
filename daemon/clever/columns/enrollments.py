"""enrollments.csv column-wise: `Checker.enrollment_row`'s references as key membership.

A reference is a (school, id) pair: a section or student id used by several schools stays
per school, and one held in its file sends the row down the careful path (it is held too).
"""

from __future__ import annotations

import polars as pl

from daemon.clever.cells import MAX_ID
from daemon.clever.columns.plain import Known, Plain, passed
from daemon.clever.columns.text import joined, required, tidy_row, value
from daemon.clever.reader import CsvFile
from daemon.roster.entities import ENROLLMENTS, SECTIONS, STUDENTS


def enrollments(known: Known, f: CsvFile, frame: pl.DataFrame) -> Plain:
    school, section, student = (value(f, name) for name in ENROLLMENTS.key)
    plain = (
        tidy_row(f)
        & required(school, MAX_ID)
        & required(section, MAX_ID)
        & required(student, MAX_ID)
        & school.is_in(known.schools().implode())
        & joined(school, section).is_in(known.imported(SECTIONS).implode())
        & joined(school, student).is_in(known.imported(STUDENTS).implode())
    )
    mask = frame.select(plain.fill_null(False)).to_series()
    records = passed(frame, mask).select(
        school.alias("school_id"),
        section.alias("section_id"),
        student.alias("student_id"),
        pl.col("line"),
        pl.lit(False).alias("held"),
        pl.lit(None, pl.String).alias("kept"),
    )
    return Plain(mask, {ENROLLMENTS.name: records})
