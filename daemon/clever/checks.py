"""The careful, row-by-row rules of the five files: the authority on what a row means.

Drop the least a problem requires (School Data Sync's rule). A bad *required* value skips the
row; when the row still names a record of a school in the upload, that key is *held*: the
record keeps its current state instead of being deactivated, and the rows that depend on it
are held too. A bad *optional* value drops only the value (a warning): the record is
imported and keeps the value the roster has. A bad co-teacher costs only that link. Rows
pointing at a school, section or student missing from the upload are not held: those parents
are being deactivated, and they follow. docs/problems.md lists what each problem drops.
"""

from __future__ import annotations

from daemon.clever.cells import (
    LINK,
    MAX_ID,
    MAX_TEXT,
    RECORD,
    VALUE,
    Write,
    looks_like_rows,
)
from daemon.clever.learned import Learned
from daemon.clever.reader import CsvFile
from daemon.clever.values import clean_text
from daemon.roster.entities import (
    ENROLLMENTS,
    SCHOOLS,
    SECTION_TEACHERS,
    SECTIONS,
    STUDENTS,
    TEACHERS,
    Entity,
)


class Checker(Learned):
    """The careful per-row checks of each file, on what the files before taught (`Learned`)."""

    # -- one row of each file ---------------------------------------------------------------

    def school_row(self, f: CsvFile, line: int, fields: list[str], write: Write) -> None:
        self.other_columns(f, line, fields)
        school = self.text(f, line, fields, "school_id", required=True, limit=MAX_ID)
        name = self.text(f, line, fields, "school_name", required=True)
        if not school or self.duplicate(f, line, (school,), "school_id"):
            return
        if name is None:
            self.hold(SCHOOLS, write, (school,), line)
        else:
            self.schools.add(school)
            write((school, name, self.extras_json(f, line, fields), line, False, None))

    def person_row(
        self, f: CsvFile, entity: Entity, line: int, fields: list[str], write: Write
    ) -> None:
        self.other_columns(f, line, fields)
        student = entity is STUDENTS
        id_column = entity.key[1]
        email_column = "student_email" if student else "teacher_email"
        school = self.text(f, line, fields, "school_id", required=True, limit=MAX_ID)
        person = self.text(f, line, fields, id_column, required=True, limit=MAX_ID)
        if not school or not person:
            self.unreadable(f, line, fields)
            return
        key = (school, person)
        if self.duplicate(f, line, key, id_column):
            return
        if self.school_held(f, line, school):
            self.known(entity).add(key)
            self.hold(entity, write, key, line)
            return
        if not self.school_ref(f, line, school):
            self.skip(entity, key, line)
            return
        self.known(entity).add(key)
        first = self.text(f, line, fields, "first_name", required=True)
        last = self.text(f, line, fields, "last_name", required=True)
        kept: list[str] = []
        if student:
            # A student's email and username are optional values, but one of them is the
            # login: a bad email costs only the value when there is a username to log in with.
            username = self.text(
                f, line, fields, "username", required=False, limit=MAX_ID, drop=VALUE
            )
            email = self.email(
                f, line, fields, email_column, required=False, drop=VALUE if username else RECORD
            )
            grade = self.grade(f, line, fields)
            if email == "" and not username:
                message = "a student needs a student_email or a username (both are empty)"
                if username is None:
                    message = "a student needs a student_email or a username that can be used"
                self.error(f, line, email_column, "", "missing_login", message)
                email = None
            if email is None and username:
                email, kept = "", ["email"]
            kept += [
                name for name, value in (("username", username), ("grade", grade)) if value is None
            ]
            values: tuple[str | None, ...] = (first, last, email, username or "", grade or "")
        else:
            email = self.email(f, line, fields, email_column, required=True, drop=RECORD)
            values = (first, last, email)
        if any(v is None for v in values):
            self.hold(entity, write, key, line)
        else:
            write((*key, *values, self.extras_json(f, line, fields), line, False, _kept(kept)))

    def section_row(
        self, f: CsvFile, line: int, fields: list[str], write: Write, write_link: Write
    ) -> None:
        self.other_columns(f, line, fields)
        school = self.text(f, line, fields, "school_id", required=True, limit=MAX_ID)
        section = self.text(f, line, fields, "section_id", required=True, limit=MAX_ID)
        if not school or not section:
            self.unreadable(f, line, fields)
            return
        key = (school, section)
        if self.duplicate(f, line, key, "section_id"):
            return
        if self.school_held(f, line, school):
            self.sections.add(key)
            self.hold(SECTIONS, write, key, line)  # its teacher links stay as they are too
            return
        if not self.school_ref(f, line, school):
            self.skip(SECTIONS, key, line)
            return
        self.sections.add(key)
        primary = self.text(f, line, fields, "teacher_id", required=True, limit=MAX_ID)
        ok = primary is not None
        links: list[tuple[int, str, str]] = []  # (position, teacher, "ok" | "held" | "skip")
        columns = [(1, "teacher_id", primary or "")] + [
            (n, name, self.text(f, line, fields, name, required=False, limit=MAX_ID, drop=LINK))
            for n, name in f.co_teachers
        ]
        for position, column, teacher in columns:
            if not teacher:
                continue
            if any(t == teacher for _, t, _ in links):
                message = f"teacher {teacher!r} is listed twice on this section"
                self.problems.warning(
                    "repeated_teacher",
                    message,
                    file=f.name,
                    line=line,
                    column=column,
                    value=teacher,
                )
                continue
            state = self.parent(
                f,
                line,
                column,
                TEACHERS,
                school,
                teacher,
                held="their link to this section stays as it is",
                missing=_SECTION_HELD if position == 1 else "they are not linked to this section",
            )
            if position == 1 and state == "skip":
                ok = False  # no section without the teacher it is for
            links.append((position, teacher, state))
        course = self.text(f, line, fields, "course_name", required=False, drop=VALUE)
        kept: list[str] = []
        if course == "":
            course = self._course_from_name(f, line, fields)
        if course is None:
            kept.append("course_name")
        start = self.date(f, line, fields, "term_start")
        end = self.date(f, line, fields, "term_end")
        if start and end and start > end:
            message = (
                f"term_end {end} is before term_start {start}; neither date was imported: the"
                " section keeps the term the roster has (none if new)"
            )
            self.problems.warning(
                "term_order", message, file=f.name, line=line, column="term_end", value=end
            )
            start = end = None
        kept += [
            name for name, value in (("term_start", start), ("term_end", end)) if value is None
        ]
        if not ok:
            self.hold(SECTIONS, write, key, line)
            for _, teacher, state in links:
                if state != "skip":  # a teacher gone: their link goes
                    self.hold(SECTION_TEACHERS, write_link, (school, section, teacher), line)
            return
        extra = self.extras_json(f, line, fields)
        write(
            (
                school,
                section,
                primary,
                course,
                start or None,
                end or None,
                extra,
                line,
                False,
                _kept(kept),
            )
        )
        for position, teacher, state in links:
            link = (school, section, teacher)
            if state == "ok":
                write_link((*link, position, line, False, None))
            elif state == "held":
                self.hold(SECTION_TEACHERS, write_link, link, line)
            else:
                self.skip(SECTION_TEACHERS, link, line)

    def _course_from_name(self, f: CsvFile, line: int, fields: list[str]) -> str | None:
        """Clever names a section after its Name when course_name is empty: so do we. Name
        is an extra column too (other_columns reports one that swallowed rows)."""
        raw = fields[f.index["name"]] if "name" in f.index else ""
        if looks_like_rows(raw):
            return None
        name = clean_text(raw)
        if len(name) > MAX_TEXT:
            message = f"name is {len(name)} characters long (at most {MAX_TEXT})"
            self.bad(f, line, "name", name[:80] + "…", "too_long", message, VALUE)
            return None
        if name:
            detail = "course_name empty: the section's Name used instead"
            self.notes.note(f.name, "course_name", "course_name_from_name", detail, line, name)
            return name
        message = (
            "the section has neither a course_name nor a Name, so no course name was imported:"
            " the section keeps the one the roster has (none if new)"
        )
        self.problems.warning(
            "missing_course_name", message, file=f.name, line=line, column="course_name"
        )
        return None

    def enrollment_row(self, f: CsvFile, line: int, fields: list[str], write: Write) -> None:
        self.other_columns(f, line, fields)
        school = self.text(f, line, fields, "school_id", required=True, limit=MAX_ID)
        section = self.text(f, line, fields, "section_id", required=True, limit=MAX_ID)
        student = self.text(f, line, fields, "student_id", required=True, limit=MAX_ID)
        if not school or not section or not student:
            self.unreadable(f, line, fields)
            return
        key = (school, section, student)
        if self.school_held(f, line, school):
            self.hold(ENROLLMENTS, write, key, line)
            return
        if not self.school_ref(f, line, school):
            self.skip(ENROLLMENTS, key, line)
            return
        notes = {"held": _ENROLLMENT_HELD, "missing": "this enrollment is skipped too"}
        states = [
            self.parent(f, line, "section_id", SECTIONS, school, section, **notes),
            self.parent(f, line, "student_id", STUDENTS, school, student, **notes),
        ]
        if "skip" in states:
            self.skip(ENROLLMENTS, key, line)
        elif "held" in states:
            self.hold(ENROLLMENTS, write, key, line)
        else:
            write((*key, line, False, None))


_SECTION_HELD = "this section is held: it stays as it is"
_ENROLLMENT_HELD = "this enrollment is held too: it stays as it is"


def _kept(fields: list[str]) -> str | None:
    """The staged `kept` column: the fields whose roster value stays, as ",a,b," (or None)."""
    return f",{','.join(fields)}," if fields else None
