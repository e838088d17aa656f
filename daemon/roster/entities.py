"""The six roster entities: what identifies a record and which fields an upload can change."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entity:
    name: str
    file: str
    key: tuple[str, ...]
    fields: tuple[str, ...]
    # Optional values: when one is bad, only it is dropped and the record keeps its own.
    keepable: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return self.key + self.fields

    @property
    def stage_columns(self) -> tuple[str, ...]:
        """A staged row: the record, the line it came from, whether it is held as it is, and
        the fields that keep their roster value (a bad optional value was dropped)."""
        return (*self.columns, "line", "held", "kept")


SCHOOLS = Entity("schools", "schools.csv", ("school_id",), ("name", "extra"))
STUDENTS = Entity(
    "students",
    "students.csv",
    ("school_id", "student_id"),
    ("first_name", "last_name", "email", "username", "grade", "extra"),
    ("email", "username", "grade"),
)
TEACHERS = Entity(
    "teachers",
    "teachers.csv",
    ("school_id", "teacher_id"),
    ("first_name", "last_name", "email", "extra"),
)
SECTIONS = Entity(
    "sections",
    "sections.csv",
    ("school_id", "section_id"),
    ("teacher_id", "course_name", "term_start", "term_end", "extra"),
    ("course_name", "term_start", "term_end"),
)
# position 1 is the section's primary teacher (teacher_id), N the teacher_N_id column.
SECTION_TEACHERS = Entity(
    "section_teachers", "sections.csv", ("school_id", "section_id", "teacher_id"), ("position",)
)
ENROLLMENTS = Entity(
    "enrollments", "enrollments.csv", ("school_id", "section_id", "student_id"), ()
)

# Parents before children: the order files are validated and changes are applied.
ENTITIES: tuple[Entity, ...] = (
    SCHOOLS,
    TEACHERS,
    STUDENTS,
    SECTIONS,
    SECTION_TEACHERS,
    ENROLLMENTS,
)
BY_NAME = {e.name: e for e in ENTITIES}
FILES: tuple[str, ...] = (
    "schools.csv",
    "students.csv",
    "teachers.csv",
    "sections.csv",
    "enrollments.csv",
)
