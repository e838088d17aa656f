"""academicSessions.csv, courses.csv, classes.csv and enrollments.csv: sections, their
teachers and their students.

A class is a section of its school: its course's title is the course name (the class's own
title when the course has none), its terms' first start and last end are the term dates.
Its teachers come from enrollments with role teacher: the one marked `primary=true` first
(it is the section's teacher_id), the others in the file's order. A class needs a teacher
(as a Clever section does): one without a teacher enrollment is skipped. Students'
enrollments are read in a second pass over enrollments.csv, once the sections are written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from daemon.clever.cells import MAX_ID, RECORD, VALUE, Key, Row, Write
from daemon.clever.reader import CsvFile
from daemon.oneroster.cells import BOOLEANS, CLASS_TYPES, ENROLLMENT_ROLES_ALL, SESSION_TYPES
from daemon.oneroster.files import CLASSES, ENROLLMENTS, USERS
from daemon.oneroster.people import People, bucket
from daemon.roster.entities import ENROLLMENTS as ENROLLMENT
from daemon.roster.entities import SECTION_TEACHERS, SECTIONS, STUDENTS, TEACHERS, Entity
from daemon.roster.problems import ProblemLog
from daemon.roster.tenant import TenantSettings

TEACHERS_BUCKET = bucket(ENROLLMENTS, "teachers")
STUDENTS_BUCKET = bucket(ENROLLMENTS, "students")
OTHERS_BUCKET = bucket(ENROLLMENTS, "other roles")


@dataclass
class Section:
    """A class read from classes.csv, waiting for its teachers."""

    school: str
    course: str
    start: str | None  # None: the roster keeps its value
    end: str | None
    extra: str | None
    line: int
    held: bool = False
    teachers: list[tuple[str, bool, int, str]] = field(default_factory=list)
    # (teacher, primary, line, "ok" | "held")


class Classes(People):
    """Sessions, courses and classes read so far, and the checks of their rows."""

    def __init__(
        self, settings: TenantSettings, problems: ProblemLog, skip: Callable[[Entity, Row], None]
    ) -> None:
        super().__init__(settings, problems, skip)
        self.sessions: dict[str, tuple[str, str] | None] = {}  # None: its dates are bad
        self.courses: dict[str, str] = {}
        self.sections: dict[str, Section] = {}
        self.skipped_classes: dict[str, int] = {}

    # -- academicSessions.csv and courses.csv --------------------------------------------------

    def session_row(self, f: CsvFile, line: int, fields: list[str]) -> None:
        self.other_columns(f, line, fields)
        ident = self.sourced_id(f, line, fields)
        self.text(f, line, fields, "title", required=True)
        kind = self.enum(f, line, fields, "type", SESSION_TYPES, required=True, drop=RECORD)
        start = self.iso_date(f, line, fields, "startdate", required=True, drop=RECORD)
        end = self.iso_date(f, line, fields, "enddate", required=True, drop=RECORD)
        if ident is None:
            return
        if kind is None or not start or not end:
            self.sessions[ident] = None
            return
        if start > end:
            message = f"endDate {end} is before startDate {start}: the session's dates are not used"
            self.error(f, line, "enddate", end, "term_order", message)
            self.sessions[ident] = None
            return
        self.sessions[ident] = (start, end)

    def course_row(self, f: CsvFile, line: int, fields: list[str]) -> None:
        self.other_columns(f, line, fields)
        ident = self.sourced_id(f, line, fields)
        title = self.text(f, line, fields, "title", required=True)
        if ident is not None:
            self.courses[ident] = title or ""

    # -- classes.csv --------------------------------------------------------------------------

    def class_row(self, f: CsvFile, line: int, fields: list[str]) -> None:
        self.other_columns(f, line, fields)
        ident = self.sourced_id(f, line, fields)
        school = self.text(f, line, fields, "schoolsourcedid", required=True, limit=MAX_ID)
        title = self.text(f, line, fields, "title", required=True)
        course_id = self.text(f, line, fields, "coursesourcedid", required=True, limit=MAX_ID)
        terms = self.id_list(f, line, fields, "termsourcedids")
        if "classtype" in f.index:
            note = "kept as sent with the section's other columns"
            self.enum(
                f, line, fields, "classtype", CLASS_TYPES, required=False, drop=VALUE, note=note
            )
        if ident is None or not school:
            return
        if (school,) in self.held["schools"]:
            first = self.held["schools"][(school,)]
            message = (
                f"school {school!r} was skipped in orgs.csv (line {first}), so this section is"
                " held with it"
            )
            self.error(f, line, "schoolsourcedid", school, "parent_skipped", message)
            self.sections[ident] = Section(school, "", None, None, None, line, held=True)
            return
        if school not in self.schools:
            kind = self.orgs.get(school)
            why = f"is a {kind}, not a school" if kind else "is not in orgs.csv"
            message = f"schoolSourcedId {school!r} {why}, so this section is skipped"
            self.error(f, line, "schoolsourcedid", school, "unknown_school", message)
            self.skipped_classes[ident] = line
            return
        course = None
        if course_id is not None and course_id not in self.courses:
            message = (
                f"courseSourcedId {course_id!r} is not in courses.csv, so this section is skipped"
            )
            self.error(f, line, "coursesourcedid", course_id, "unknown_reference", message)
            self.skipped_classes[ident] = line
            return
        if course_id is not None:
            course = self.courses[course_id] or title
        start, end = self._term(f, line, terms or [])
        if title is None or course_id is None or terms is None:
            self.sections[ident] = Section(school, "", None, None, None, line, held=True)
            return
        self.sections[ident] = Section(
            school, course or title, start, end, self.extras_json(f, line, fields), line
        )

    def _term(self, f: CsvFile, line: int, terms: list[str]) -> tuple[str | None, str | None]:
        """The first start and last end of the class's sessions; an unknown session costs
        the term dates only (a warning): the section keeps those the roster has."""
        dates = []
        for term in terms:
            if term not in self.sessions:
                message = (
                    f"termSourcedIds names {term!r}, which is not in academicSessions.csv; the"
                    " term dates were not imported: the section keeps those the roster has"
                )
                self.problems.warning(
                    "unknown_reference", message, file=f.name, line=line,
                    column="termSourcedIds", value=term,
                )  # fmt: skip
                return None, None
            found = self.sessions[term]
            if found is None:
                return None, None  # its own row says why
            dates.append(found)
        if not dates:
            return None, None
        return min(d[0] for d in dates), max(d[1] for d in dates)

    # -- enrollments.csv ----------------------------------------------------------------------

    def _enrollment(
        self, f: CsvFile, line: int, fields: list[str]
    ) -> tuple[str, str, str, str] | None:
        """(role, class, school, user) of an enrollment row whose values are right."""
        role = self.enum(f, line, fields, "role", ENROLLMENT_ROLES_ALL, required=True, drop=RECORD)
        ident = self.sourced_id(f, line, fields) if "sourcedid" in f.index else ""
        if ident is None and fields[f.index["status"]].strip().lower() == "tobedeleted":
            return None
        section = self.text(f, line, fields, "classsourcedid", required=True, limit=MAX_ID)
        school = self.text(f, line, fields, "schoolsourcedid", required=True, limit=MAX_ID)
        user = self.text(f, line, fields, "usersourcedid", required=True, limit=MAX_ID)
        if not role or not section or not school or not user or ident is None:
            return None
        return role, section, school, user

    def _bucket(self, f: CsvFile, fields: list[str]) -> str:
        role = fields[f.index["role"]].strip().lower()
        return {"teacher": TEACHERS_BUCKET, "student": STUDENTS_BUCKET}.get(role, OTHERS_BUCKET)

    def teacher_pass(self, f: CsvFile, line: int, fields: list[str]) -> bool:
        """First pass: a teacher's enrollment, linked to its section. Returns whether the row
        is a teacher's (the second pass skips those)."""
        if self._bucket(f, fields) != TEACHERS_BUCKET:
            return False
        self.bucket = TEACHERS_BUCKET
        self.other_columns(f, line, fields)
        found = self._enrollment(f, line, fields)
        primary = self.enum(
            f, line, fields, "primary", BOOLEANS, required=False, drop=VALUE, note="read as false"
        )
        if found is None:
            return True
        _, class_id, _, user = found
        section = self._section(f, line, class_id, found[2])
        if section is None:
            return True
        state = self._person(f, line, user, section.school, TEACHERS)
        if state == "skip":
            return True
        if any(t == user for t, _, _, _ in section.teachers):
            message = f"teacher {user!r} is enrolled twice in this class"
            self.problems.warning(
                "repeated_teacher", message, file=f.name, line=line, column="userSourcedId",
                value=user,
            )  # fmt: skip
            return True
        is_primary = primary == "true"
        if is_primary and any(p for _, p, _, _ in section.teachers):
            first = next(ln for _, p, ln, _ in section.teachers if p)
            message = (
                f"a second primary teacher for class {class_id!r} (the first is on line"
                f" {first}): OneRoster allows one; {user!r} is linked as a co-teacher"
            )
            self.error(f, line, "primary", primary, "two_primary_teachers", message)
            is_primary = False
        section.teachers.append((user, is_primary, line, state))
        return True

    def write_sections(self, write: Write, write_link: Write) -> None:
        """After the first pass: each section, with its primary teacher first."""
        for class_id, s in self.sections.items():
            key = (s.school, class_id)
            ordered = sorted(s.teachers, key=lambda t: not t[1])  # stable: file order kept
            if s.held:
                self.hold(SECTIONS, write, key, s.line)
                for teacher, _, line, _ in ordered:
                    self.hold(SECTION_TEACHERS, write_link, (*key, teacher), line)
                continue
            if not ordered:
                self.bucket = CLASSES
                message = (
                    "the class has no teacher in enrollments.csv (role teacher), so this section"
                    " is skipped: a section needs its teacher"
                )
                self.problems.error(
                    "no_teacher", message, file=CLASSES, line=s.line, column="sourcedId",
                    value=class_id,
                )  # fmt: skip
                self.error_rows[CLASSES] += 1
                self.skip_row(SECTIONS, (*key, s.line))
                self.skipped_classes[class_id] = s.line
                continue
            kept = [n for n, v in (("term_start", s.start), ("term_end", s.end)) if v is None]
            write(
                (
                    *key, ordered[0][0], s.course, s.start, s.end, s.extra, s.line, False,
                    f",{','.join(kept)}," if kept else None,
                )
            )  # fmt: skip
            for position, (teacher, _, line, state) in enumerate(ordered, start=1):
                link = (*key, teacher)
                if state == "held":
                    self.hold(SECTION_TEACHERS, write_link, link, line)
                else:
                    write_link((*link, position, line, False, None))

    def student_pass(self, f: CsvFile, line: int, fields: list[str], write: Write) -> None:
        """Second pass: a student's enrollment (other roles are counted, not imported)."""
        self.bucket = self._bucket(f, fields)
        if self.bucket == TEACHERS_BUCKET:
            return
        self.other_columns(f, line, fields)
        found = self._enrollment(f, line, fields)
        if "primary" in f.index:
            note = "it means nothing for a student"
            self.enum(f, line, fields, "primary", BOOLEANS, required=False, drop=VALUE, note=note)
        if found is None:
            return
        role, class_id, school, user = found
        if role != "student":
            detail = "enrollments whose role is not student or teacher are not part of the roster"
            self.notes.note(f.name, "role", "other_role", detail, line, role)
            return
        section = self._section(f, line, class_id, school)
        if section is None or class_id in self.skipped_classes:
            if section is not None:
                self._class_skipped(f, line, class_id)
            return
        key: Key = (section.school, class_id, user)
        state = self._person(f, line, user, section.school, STUDENTS)
        if state == "skip":
            self.skip_row(ENROLLMENT, (*key, line))
        elif state == "held" or section.held:
            self.hold(ENROLLMENT, write, key, line)
        else:
            write((*key, line, False, None))

    def _section(self, f: CsvFile, line: int, class_id: str, school: str) -> Section | None:
        section = self.sections.get(class_id)
        if section is None:
            if class_id in self.skipped_classes:
                self._class_skipped(f, line, class_id)
            elif class_id in self.deleted.get(CLASSES, {}):
                detail = "enrollments in classes marked tobedeleted left out"
                self.notes.note(f.name, "classSourcedId", "tobedeleted", detail, line, class_id)
            else:
                message = (
                    f"classSourcedId {class_id!r} is not in classes.csv, so this enrollment is"
                    " skipped"
                )
                self.error(f, line, "classsourcedid", class_id, "unknown_reference", message)
            return None
        if school != section.school:
            message = (
                f"schoolSourcedId {school!r} is not the class's school ({section.school!r},"
                f" classes.csv line {section.line}): enrolled in the class's school"
            )
            self.problems.warning(
                "school_mismatch", message, file=f.name, line=line, column="schoolSourcedId",
                value=school,
            )  # fmt: skip
        return section

    def _class_skipped(self, f: CsvFile, line: int, class_id: str) -> None:
        first = self.skipped_classes[class_id]
        message = (
            f"classSourcedId {class_id!r} was skipped in classes.csv (line {first}), so this"
            " enrollment is skipped too"
        )
        self.error(f, line, "classsourcedid", class_id, "parent_skipped", message)

    def _person(self, f: CsvFile, line: int, user: str, school: str, entity: object) -> str:
        """Whether a user is there as `entity` at `school` ("ok"), held ("held") or not ("skip")."""
        noun = "teacher" if entity is TEACHERS else "student"
        key = (school, user)
        held = self.held[TEACHERS.name if entity is TEACHERS else STUDENTS.name]
        if key in held:
            message = (
                f"userSourcedId {user!r} was skipped in users.csv (line {held[key]}), so this"
                " enrollment is held: it stays as it is"
            )
            self.error(f, line, "usersourcedid", user, "parent_skipped", message)
            return "held"
        known = self.known[TEACHERS.name if entity is TEACHERS else STUDENTS.name]
        if key in known:
            return "ok"
        person = self.people.get(user)
        if user in self.deleted.get(USERS, {}):
            detail = "enrollments of users marked tobedeleted left out"
            self.notes.note(f.name, "userSourcedId", "tobedeleted", detail, line, user)
            return "skip"
        if person is None:
            why = "is not in users.csv"
        elif person.role != noun:
            why = f"is a {person.role}, not a {noun}, in users.csv (line {person.line})"
        elif entity is TEACHERS and person.schools:
            # Real exports list some teachers under another school: linked, with a warning.
            message = (
                f"teacher {user!r} is at school {person.schools[0]!r} in users.csv (line"
                f" {person.line}), not {school!r}: linked to this section all the same"
            )
            self.problems.warning(
                "teacher_other_school", message, file=f.name, line=line,
                column="userSourcedId", value=user,
            )  # fmt: skip
            return "ok"
        else:
            why = f"is not at school {school!r} in users.csv (line {person.line})"
        message = f"userSourcedId {user!r} {why}, so this enrollment is skipped"
        self.error(f, line, "usersourcedid", user, "unknown_reference", message)
        return "skip"
