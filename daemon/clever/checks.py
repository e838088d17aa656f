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
    NOUNS,
    RECORD,
    VALUE,
    Cells,
    Key,
    Skip,
    Write,
    looks_like_rows,
)
from daemon.clever.reader import CsvFile
from daemon.clever.values import clean_text, has_control
from daemon.roster.entities import (
    ENROLLMENTS,
    FILES,
    SCHOOLS,
    SECTION_TEACHERS,
    SECTIONS,
    STUDENTS,
    TEACHERS,
    Entity,
)
from daemon.roster.problems import ProblemLog
from daemon.roster.tenant import TenantSettings


class Checker(Cells):
    """What the files taught so far (ids, held and skipped keys) and the careful per-row checks."""

    def __init__(self, settings: TenantSettings, problems: ProblemLog, skip: Skip) -> None:
        super().__init__(settings, problems)
        self._skip = skip
        self.schools: set[str] = set()
        self.teachers: set[Key] = set()
        self.students: set[Key] = set()
        self.sections: set[Key] = set()
        # key -> line of the row that was skipped but holds its record
        self.held: dict[str, dict[Key, int]] = {
            e.name: {} for e in (SCHOOLS, TEACHERS, STUDENTS, SECTIONS)
        }
        # id -> line of the first row naming it that was skipped without holding (an unknown
        # school): what a dependent row names as its root cause
        self.skipped: dict[str, dict[str, int]] = {
            e.name: {} for e in (SCHOOLS, TEACHERS, STUDENTS, SECTIONS)
        }
        self.seen: dict[str, dict[Key, int]] = {name: {} for name in FILES}
        self._by_id: dict[str, dict[str, str]] = {}
        self._known = {
            TEACHERS.name: self.teachers,
            STUDENTS.name: self.students,
            SECTIONS.name: self.sections,
        }

    def known(self, entity: Entity) -> set[Key]:
        return self._known[entity.name]

    def elsewhere(self, entity: Entity, ident: str) -> str | None:
        """A school whose rows list `ident`, for a row that names it under another school:
        one where its row was imported if there is one. Built once the entity's file is read:
        only dependents ask."""
        if entity.name not in self._by_id:
            held = self.held[entity.name]
            schools: dict[str, str] = {}
            for school, other in sorted(self.known(entity), key=lambda k: (k in held, k)):
                schools.setdefault(other, school)
            self._by_id[entity.name] = schools
        return self._by_id[entity.name].get(ident)

    def line_of(self, entity: Entity, key: Key) -> int:
        return self.seen[entity.file].get(key, 0)

    # -- references -------------------------------------------------------------------------

    def duplicate(self, f: CsvFile, line: int, key: Key, column: str) -> bool:
        first = self.seen[f.name].setdefault(key, line)
        if first == line:
            return False
        school = f", school {key[0]!r}" if len(key) > 1 else ""
        message = f"{column} {key[-1]!r} appears again (first on line {first}{school}); skipped"
        self.error(f, line, column, key[-1], "duplicate_id", message)
        return True

    def school_held(self, f: CsvFile, line: int, school: str) -> bool:
        """Whether the row's school was skipped in schools.csv: then the row is held too
        (were the school new, its records would otherwise be imported without it)."""
        first = self.held[SCHOOLS.name].get((school,))
        if first is None:
            return False
        message = (
            f"school {school!r} was skipped in schools.csv (line {first}), so this"
            f" {NOUNS[f.name]} is held with it: it stays as it is"
        )
        self.error(f, line, "school_id", school, "parent_skipped", message)
        return True

    def school_ref(self, f: CsvFile, line: int, school: str) -> bool:
        if school in self.schools:
            return True
        message = f"school_id {school!r} is not in schools.csv, so this {NOUNS[f.name]} is skipped"
        self.error(f, line, "school_id", school, "unknown_school", message)
        return False

    def parent(
        self,
        f: CsvFile,
        line: int,
        column: str,
        parent: Entity,
        school: str,
        ident: str,
        *,
        held: str,
        missing: str,
    ) -> str:
        """Whether a row's parent is there ("ok"), held ("held") or missing ("skip"). A
        problem naming the root cause and its consequence (`held`, `missing`: "so …") is
        logged unless the parent is there. A teacher listed under another school is there."""
        key = (school, ident)
        other = None
        if parent is TEACHERS and key not in self.teachers:
            other = self.elsewhere(TEACHERS, ident)
            key = (other, ident) if other is not None else key
        if key in self.held[parent.name]:
            first = self.held[parent.name][key]
            message = f"{column} {ident!r} was skipped in {parent.file} (line {first}), so {held}"
            self.error(f, line, column, ident, "parent_skipped", message)
            return "held"
        if other is not None:
            message = (
                f"teacher {ident!r} is listed in teachers.csv under school {other!r}"
                f" (line {self.line_of(TEACHERS, key)}), not {school!r}:"
                " linked to this section all the same"
            )
            self.problems.warning(
                "teacher_other_school", message, file=f.name, line=line, column=column, value=ident
            )
            return "ok"
        if key in self.known(parent):
            return "ok"
        if ident in self.skipped[parent.name]:
            first = self.skipped[parent.name][ident]
            message = (
                f"{column} {ident!r} was skipped in {parent.file} (line {first}), so {missing}"
            )
            self.error(f, line, column, ident, "parent_skipped", message)
            return "skip"
        other = self.elsewhere(parent, ident)
        where = (
            f" (it is there under school {other!r}, line {self.line_of(parent, (other, ident))})"
            if other is not None
            else ""
        )
        code = "unknown_teacher" if parent is TEACHERS else "unknown_reference"
        message = (
            f"{column} {ident!r} is not in {parent.file} for school {school!r}{where}, so {missing}"
        )
        self.error(f, line, column, ident, code, message)
        return "skip"

    def hold(self, entity: Entity, write: Write, key: Key, line: int) -> None:
        """Skip a row but keep the record its key names as it is."""
        write((*key, *([None] * len(entity.fields)), line, True, None))
        if entity.name in self.held:
            self.held[entity.name].setdefault(key, line)

    def unreadable(self, f: CsvFile, line: int, fields: list[str]) -> None:
        """A row that could not be read whole (a wrong number of values, an empty school)
        still names its record when the id is there: the plan counts that record's
        deactivation as named by a skipped row, and dependents name this row as the cause."""
        entity = BY_FILE[f.name]
        key = tuple(
            fields[f.index[column]].strip() if f.index[column] < len(fields) else ""
            for column in entity.key
        )
        if key[-1] and all(len(part) <= MAX_ID and not has_control(part) for part in key):
            self.skip(entity, key, line)

    def misshapen(self, f: CsvFile, line: int, fields: list[str]) -> None:
        """A row with another number of values than the header has columns."""
        message = f"the row has {len(fields)} values but the header has {f.width} columns"
        self.error(f, line, None, None, "wrong_field_count", message)
        self.unreadable(f, line, fields)

    def skip(self, entity: Entity, key: Key, line: int) -> None:
        """Skip a row whose record is not held: remembered so that the plan can tell which
        records it deactivates although the upload named them, and dependents the cause."""
        self._skip(entity, (*key, line))
        if entity.name in self.skipped:
            self.skipped[entity.name].setdefault(key[-1], line)

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


BY_FILE = {e.file: e for e in (SCHOOLS, TEACHERS, STUDENTS, SECTIONS, ENROLLMENTS)}
_SECTION_HELD = "this section is held: it stays as it is"
_ENROLLMENT_HELD = "this enrollment is held too: it stays as it is"


def _kept(fields: list[str]) -> str | None:
    """The staged `kept` column: the fields whose roster value stays, as ",a,b," (or None)."""
    return f",{','.join(fields)}," if fields else None
