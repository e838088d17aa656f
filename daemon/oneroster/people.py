"""orgs.csv, roles.csv and users.csv: schools, and people by role with their schools.

A user is a student or a teacher through their role (users.csv's `role` in OneRoster 1.1,
roles.csv's rows in 1.2) and belongs to the schools its `orgSourcedIds` (or its roles' orgs)
name: one record per school, as the Clever files have one row per school. Other roles
(parents, aides, administrators…) are not part of the roster. A row whose status is
`tobedeleted` is not part of the snapshot: its record is deactivated like any missing one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from daemon.clever.cells import MAX_ID, RECORD, VALUE, Key, Row, Write
from daemon.clever.reader import CsvFile
from daemon.oneroster.cells import ORG_TYPES, ROLE_TYPES, ROLES_11, ROLES_12, RowCells
from daemon.oneroster.files import ROLES, USERS
from daemon.roster.entities import SCHOOLS, STUDENTS, TEACHERS, Entity
from daemon.roster.problems import ProblemLog
from daemon.roster.tenant import TenantSettings

ROSTER_ROLES = {"student": STUDENTS, "teacher": TEACHERS}
OTHER_ROLES = "other roles"


def bucket(file: str, what: str) -> str:
    """A line of the per-file table: "users.csv (students)"."""
    return f"{file} ({what})"


@dataclass
class Person:
    """What enrollments need to know of a user: their role and schools, and whether held."""

    role: str
    schools: tuple[str, ...]
    line: int


class People(RowCells):
    """Schools and people read so far, and the checks of their rows."""

    def __init__(
        self,
        settings: TenantSettings,
        problems: ProblemLog,
        skip: Callable[[Entity, Row], None],
    ) -> None:
        super().__init__(settings, problems)
        self.skip_row = skip
        self.orgs: dict[str, str] = {}  # sourcedId -> type
        self.schools: set[str] = set()
        self.held: dict[str, dict[Key, int]] = {e.name: {} for e in (SCHOOLS, TEACHERS, STUDENTS)}
        self.known: dict[str, set[Key]] = {TEACHERS.name: set(), STUDENTS.name: set()}
        self.people: dict[str, Person] = {}
        self.deleted: dict[str, dict[str, int]] = {}  # file -> sourcedId -> line (tobedeleted)
        self.seen: dict[str, dict[str, int]] = {}
        self.roles: dict[str, list[tuple[str, str, int]]] | None = None  # user -> (role, org, line)
        self.version = "1.1"

    # -- shared ------------------------------------------------------------------------------

    def sourced_id(
        self, f: CsvFile, line: int, fields: list[str], column: str = "sourcedid"
    ) -> str | None:
        """The row's id, once: None when empty, too long, repeated (errors) or tobedeleted."""
        ident = self.text(f, line, fields, column, required=True, limit=MAX_ID)
        if not ident:
            return None
        seen = self.seen.setdefault(f.name, {})
        first = seen.setdefault(ident, line)
        if first != line:
            message = f"sourcedId {ident!r} appears again (first on line {first}); skipped"
            self.error(f, line, column, ident, "duplicate_id", message)
            return None
        status = self.status(f, line, fields)
        if status is None:
            return None
        if status == "tobedeleted":
            self.deleted.setdefault(f.name, {})[ident] = line
            detail = "records marked tobedeleted left out of the snapshot (they are deactivated)"
            self.notes.note(f.name, "status", "tobedeleted", detail, line, ident)
            return None
        return ident

    def hold(self, entity: Entity, write: Write, key: Key, line: int) -> None:
        write((*key, *([None] * len(entity.fields)), line, True, None))
        if entity.name in self.held:
            self.held[entity.name].setdefault(key, line)

    # -- orgs.csv ----------------------------------------------------------------------------

    def org_row(self, f: CsvFile, line: int, fields: list[str], write: Write) -> None:
        self.other_columns(f, line, fields)
        ident = self.sourced_id(f, line, fields)
        name = self.text(f, line, fields, "name", required=True)
        kind = self.enum(f, line, fields, "type", ORG_TYPES, required=True, drop=RECORD)
        if ident is None or kind is None:
            return
        self.orgs[ident] = kind
        if kind != "school":
            detail = f"orgs of type {kind} are not schools: not imported as schools"
            self.notes.note(f.name, "type", "not_a_school", detail, line, kind)
            return
        if name is None:
            self.hold(SCHOOLS, write, (ident,), line)
            return
        self.schools.add(ident)
        write((ident, name, self.extras_json(f, line, fields), line, False, None))

    # -- roles.csv (OneRoster 1.2) -----------------------------------------------------------

    def role_row(self, f: CsvFile, line: int, fields: list[str]) -> None:
        self.other_columns(f, line, fields)
        assert self.roles is not None
        if self.status(f, line, fields) in (None, "tobedeleted"):
            return
        user = self.text(f, line, fields, "usersourcedid", required=True, limit=MAX_ID)
        role = self.enum(f, line, fields, "role", ROLES_12, required=True, drop=RECORD)
        org = self.text(f, line, fields, "orgsourcedid", required=True, limit=MAX_ID)
        self.enum(f, line, fields, "roletype", ROLE_TYPES, required=False, drop=VALUE)
        if not user or not role or not org:
            return
        if org not in self.orgs:
            message = f"orgSourcedId {org!r} is not in orgs.csv, so this role is skipped"
            self.error(f, line, "orgsourcedid", org, "unknown_reference", message)
            return
        self.roles.setdefault(user, []).append((role, org, line))

    def roles_without_user(self, f: CsvFile) -> None:
        """After users.csv: roles naming a user it does not have."""
        assert self.roles is not None
        for user, roles in self.roles.items():
            if user in self.seen.get(USERS, {}):
                continue
            _, _, line = roles[0]
            self.bucket = ROLES
            message = f"userSourcedId {user!r} is not in users.csv, so this role is skipped"
            self.error(f, line, "usersourcedid", user, "unknown_reference", message)

    # -- users.csv ---------------------------------------------------------------------------

    def user_role(self, f: CsvFile, line: int, fields: list[str]) -> tuple[str, list[str]] | None:
        """(role, org ids) of a users.csv row; the bucket of its counts set by the way."""
        ident = fields[f.index["sourcedid"]].strip()
        if self.roles is not None:
            roles = self.roles.get(ident, [])
            roster = [r for r in roles if r[0] in ROSTER_ROLES]
            if not roster:
                self.bucket = bucket(USERS, OTHER_ROLES)
                return (roles[0][0] if roles else "", [])
            role = roster[0][0]
            if any(r[0] != role for r in roster):
                message = (
                    f"user {ident!r} is both a student and a teacher in roles.csv: read as a"
                    f" {role} (line {roster[0][2]})"
                )
                self.problems.warning(
                    "two_roles", message, file=ROLES, line=roster[1][2], column="role", value=ident
                )
            self.bucket = bucket(USERS, ROSTER_ROLES[role].name)
            return role, [org for r, org, _ in roster if r == role]
        roles_12 = ROLES_12 if self.version == "1.2" else ROLES_11
        raw = fields[f.index["role"]].strip().lower() if "role" in f.index else ""
        self.bucket = bucket(USERS, ROSTER_ROLES[raw].name if raw in ROSTER_ROLES else OTHER_ROLES)
        named = self.enum(f, line, fields, "role", roles_12, required=True, drop=RECORD)
        orgs = self.id_list(f, line, fields, "orgsourcedids")
        if named is None or orgs is None:
            return None
        return named, orgs

    def user_row(
        self, f: CsvFile, line: int, fields: list[str], writers: Mapping[str, Write]
    ) -> None:
        self.other_columns(f, line, fields)
        found = self.user_role(f, line, fields)
        ident = self.sourced_id(f, line, fields)
        if found is None or ident is None:
            return
        role, orgs = found
        entity = ROSTER_ROLES.get(role)
        if entity is None:
            detail = "users whose role is not student or teacher are not part of the roster"
            self.notes.note(f.name, "role", "other_role", detail, line, role)
            return
        schools, held = self._schools_of(f, line, orgs, entity)
        write = writers[entity.name]
        for school in held:
            self.known[entity.name].add((school, ident))
            self.hold(entity, write, (school, ident), line)
        if not schools and not held:
            return
        self.people[ident] = Person(role, (*schools, *held), line)
        first = self.text(f, line, fields, "givenname", required=True)
        last = self.text(f, line, fields, "familyname", required=True)
        values: tuple[str | None, ...]
        kept: list[str] = []
        if entity is STUDENTS:
            username = self.text(
                f, line, fields, "username", required=False, limit=MAX_ID, drop=VALUE
            )
            email = self.email(
                f, line, fields, "email", required=False, drop=VALUE if username else RECORD
            )
            grade = self._grade(f, line, fields)
            if email == "" and not username:
                message = "a student needs an email or a username (both are empty)"
                self.error(f, line, "email", "", "missing_login", message)
                email = None
            if email is None and username:
                email, kept = "", ["email"]
            kept += [n for n, v in (("username", username), ("grade", grade)) if v is None]
            values = (first, last, email, username or "", grade or "")
        else:
            values = (first, last, self.email(f, line, fields, "email", required=True, drop=RECORD))
        extra = self.extras_json(f, line, fields)
        for school in schools:
            key = (school, ident)
            self.known[entity.name].add(key)
            if any(v is None for v in values):
                self.hold(entity, write, key, line)
            else:
                write((*key, *values, extra, line, False, f",{','.join(kept)}," if kept else None))

    def _schools_of(
        self, f: CsvFile, line: int, orgs: list[str], entity: Entity
    ) -> tuple[list[str], list[str]]:
        """(schools, held schools) among a user's orgs; an unknown org costs that school (an
        error); orgs that are not schools (the district) are no school of theirs."""
        column = "orgsourcedids" if self.roles is None else "sourcedid"
        noun = entity.name[:-1]
        schools: list[str] = []
        held: list[str] = []
        for org in orgs:
            if org in self.schools:
                schools.append(org)
            elif (org,) in self.held[SCHOOLS.name]:
                first = self.held[SCHOOLS.name][(org,)]
                message = (
                    f"school {org!r} was skipped in orgs.csv (line {first}), so this {noun} is"
                    " held with it: it stays as it is"
                )
                self.error(f, line, column, org, "parent_skipped", message)
                held.append(org)
            elif org not in self.orgs:
                message = f"org {org!r} is not in orgs.csv, so this {noun} is not linked to it"
                self.error(f, line, column, org, "unknown_school", message)
        if not schools and not held:
            if not orgs:
                message = f"this {noun} names no org, so it belongs to no school and is skipped"
                self.error(f, line, column, "", "missing_value", message)
            elif all(o in self.orgs for o in orgs):
                kinds = ", ".join(sorted({self.orgs[o] for o in orgs}))
                message = f"this {noun} belongs to no school (only to {kinds} orgs): not imported"
                self.problems.warning(
                    "no_school", message, file=f.name, line=line, column=column, value=None
                )
        return schools, held

    def _grade(self, f: CsvFile, line: int, fields: list[str]) -> str | None:
        """The first of a student's `grades` (OneRoster lists them; the roster keeps one)."""
        raw = self.text(f, line, fields, "grades", required=False, limit=MAX_ID, drop=VALUE)
        if not raw:
            return raw
        first = raw.split(",")[0].strip()
        code = self.grade_code(first)
        if code is None:
            message = f"grade {first!r} is not a CEDS grade code and no replace rule maps it"
            self.bad(f, line, "grades", first, "bad_grade", message, VALUE)
            return None
        if code != first:
            self.note_grade(f, line, first, code)
        return code
