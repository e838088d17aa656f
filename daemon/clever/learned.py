"""What the careful rules learn from the files as they read them: the ids each file lists,
the keys held or skipped, and the references a row makes to them (`checks` reads the rows).
A row that names a held, skipped or missing parent gets a problem naming the root cause."""

from __future__ import annotations

from daemon.clever.cells import MAX_ID, NOUNS, Cells, Key, Skip, Write
from daemon.clever.reader import CsvFile
from daemon.clever.values import has_control
from daemon.roster.entities import (
    ENROLLMENTS,
    FILES,
    SCHOOLS,
    SECTIONS,
    STUDENTS,
    TEACHERS,
    Entity,
)
from daemon.roster.problems import ProblemLog
from daemon.roster.tenant import TenantSettings


class Learned(Cells):
    """What the files taught so far (ids, held and skipped keys), and the references a row
    makes to it: each problem names the row that caused it."""

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


BY_FILE = {e.file: e for e in (SCHOOLS, TEACHERS, STUDENTS, SECTIONS, ENROLLMENTS)}
