# ruff: noqa: E501 - rows of CSV data read best one row to a line
"""OneRoster CSV sets for tests: the fixtures' source (tests/fixtures/oneroster/, written by
`python -m tests.support.oneroster`), zipping a set, and validating one into staging tables.

The sets quote every field and end lines with CRLF, as ClassLink's and PowerSchool's exports
do; they carry extension columns (`metadata.*`, `ext_*`), Japanese names, a parent (not part
of the roster), a teacher at two schools, and a `password` column that must never be read.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from daemon import uploadset
from daemon.clever.validate import fingerprints
from daemon.roster.entities import ENTITIES
from daemon.roster.problems import ProblemLog
from daemon.roster.tenant import TenantSettings
from daemon.store.database import Database
from daemon.store.staging import STAGE, Stage
from tests.support.clever import Checked

FIXTURES = Path(__file__).parents[1] / "fixtures" / "oneroster"
PASSWORD = "Hunter2-never-stored"

Table = Sequence[Sequence[str]]


def csv_bytes(rows: Table) -> bytes:
    out = io.StringIO(newline="")
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode("utf-8")


def manifest(version: str, modes: Mapping[str, str]) -> list[list[str]]:
    rows = [["propertyName", "value"], ["manifest.version", "1.0"], ["oneroster.version", version]]
    rows += [[f"file.{name}", mode] for name, mode in modes.items()]
    rows += [["source.systemName", "Test SIS"], ["source.systemCode", "test"]]
    return rows


# fmt: off
ORGS = [
    ["sourcedId", "status", "dateLastModified", "name", "type", "identifier", "parentSourcedId", "metadata.nces_id"],
    ["D1", "", "", "Sakura Unified", "district", "D-1", "", "0600001"],
    ["SCH1", "active", "2026-08-01T00:00:00.000Z", "Sakura Elementary", "school", "101", "D1", "0600002"],
    ["SCH2", "", "", 'Maple "North" High, Campus B', "school", "102", "D1", "0600003"],
]
SESSIONS = [
    ["sourcedId", "status", "dateLastModified", "title", "type", "startDate", "endDate", "parentSourcedId", "schoolYear"],
    ["Y2026", "", "", "2026-2027", "schoolYear", "2026-08-15", "2027-06-10", "", "2027"],
    ["T1", "", "", "Fall", "semester", "2026-08-15", "2026-12-20", "Y2026", "2027"],
    ["T2", "", "", "Spring", "semester", "2027-01-05", "2027-06-10", "Y2026", "2027"],
]
COURSES = [
    ["sourcedId", "status", "dateLastModified", "schoolYearSourcedId", "title", "courseCode", "grades", "orgSourcedId", "subjects"],
    ["C1", "", "", "Y2026", "Mathematics 3", "M3", "03", "SCH1", "math"],
    ["C2", "", "", "Y2026", "国語 (Japanese)", "JA", "09", "SCH2", "language"],
    ["C3", "", "", "Y2026", "Homeroom", "HR", "", "SCH2", ""],
]
CLASSES = [
    ["sourcedId", "status", "dateLastModified", "title", "grades", "courseSourcedId", "classCode", "classType", "location", "schoolSourcedId", "termSourcedIds", "subjects", "periods", "ext_room_capacity"],
    ["CL1", "", "", "Math 3 - Room 4", "03", "C1", "M3-1", "scheduled", "Room 4", "SCH1", "T1,T2", "math", "1", "28"],
    ["CL2", "", "", "国語 1限", "09", "C2", "JA-1", "scheduled", "Room 9", "SCH2", "T1", "language", "2", "30"],
    ["CL3", "", "", "Homeroom 9B", "09", "C3", "HR-9B", "homeroom", "", "SCH2", "T2", "", "", ""],
]
# (sourcedId, role, orgs, givenName, familyName, email, username, grades)
PEOPLE = [
    ("T100", "teacher", "SCH1", "Haruto", "佐藤", "h.sato@sakura.example", "hsato", ""),
    ("T200", "teacher", "SCH1,SCH2", "Mary", "O'Brien", "mary.obrien@sakura.example", "mobrien", ""),
    ("T300", "teacher", "SCH2", "José", "Smith, Jr.", "jose.smith@sakura.example", "jsmith", ""),
    ("S1", "student", "SCH1", "陽菜", "高橋", "hina.takahashi@students.sakura.example", "htakahashi", "03"),
    ("S2", "student", "SCH1", "Liam", "Nguyen", "", "lnguyen", "03"),
    ("S3", "student", "SCH2", "さくら", "山本", "sakura.yamamoto@students.sakura.example", "", "09,10"),
    ("S4", "student", "SCH2", "Zoë", '"Zee" Müller', "zoe.muller@students.sakura.example", "zmuller", "09"),
    ("P1", "parent", "SCH1", "Keiko", "高橋", "keiko@home.example", "", ""),
]
ENROLLMENTS = [
    ["sourcedId", "status", "dateLastModified", "classSourcedId", "schoolSourcedId", "userSourcedId", "role", "primary", "beginDate", "endDate", "metadata.seat"],
    ["E1", "", "", "CL1", "SCH1", "T200", "teacher", "false", "", "", ""],
    ["E2", "", "", "CL1", "SCH1", "T100", "teacher", "true", "", "", ""],
    ["E3", "", "", "CL1", "SCH1", "S1", "student", "false", "", "", "A1"],
    ["E4", "", "", "CL1", "SCH1", "S2", "student", "", "", "", "A2"],
    ["E5", "", "", "CL2", "SCH2", "T300", "teacher", "true", "", "", ""],
    ["E6", "", "", "CL2", "SCH2", "S3", "student", "false", "", "", ""],
    ["E7", "", "", "CL2", "SCH2", "S4", "student", "false", "", "", ""],
    ["E8", "", "", "CL3", "SCH2", "T200", "teacher", "true", "", "", ""],
    ["E9", "", "", "CL3", "SCH2", "S3", "student", "false", "", "", ""],
]
READ_FILES = ("academicSessions", "classes", "courses", "enrollments", "orgs", "users")
ABSENT_FILES = ("categories", "classResources", "courseResources", "lineItems", "resources", "results")


def users_11() -> list[list[str]]:
    rows = [
    ["sourcedId", "status", "dateLastModified", "enabledUser", "orgSourcedIds", "role", "username", "userIds", "givenName", "familyName", "middleName", "identifier", "email", "sms", "phone", "agentSourcedIds", "grades", "password", "metadata.lang", "ext_house"] ]
    for ident, role, orgs, given, family, email, username, grades in PEOPLE:
        rows.append([ident, "", "", "true", orgs, role, username, "", given, family, "", f"ID-{ident}", email, "", "", "", grades, PASSWORD, "ja" if not given.isascii() else "en", "Kaede"] )
    return rows


def users_12() -> list[list[str]]:
    rows = [
    ["sourcedId", "status", "dateLastModified", "enabledUser", "username", "userIds", "givenName", "familyName", "middleName", "identifier", "email", "sms", "phone", "agentSourcedIds", "grades", "password", "userMasterIdentifier", "preferredGivenName", "primaryOrgSourcedId", "metadata.lang"] ]
    for ident, _, orgs, given, family, email, username, grades in PEOPLE:
        rows.append([ident, "active", "2026-08-01T12:00:00Z", "true", username, "", given, family, "", f"ID-{ident}", email, "", "", "", grades, PASSWORD, f"M-{ident}", "", orgs.split(",")[0], "ja" if not given.isascii() else "en"] )
    return rows


def roles_12() -> list[list[str]]:
    rows = [
    ["sourcedId", "status", "dateLastModified", "userSourcedId", "roleType", "role", "beginDate", "endDate", "orgSourcedId", "userProfileSourcedId"] ]
    for ident, role, orgs, *_ in PEOPLE:
        for n, org in enumerate(orgs.split(",")):
            rows.append([f"R-{ident}-{org}", "active", "", ident, "primary" if n == 0 else "secondary", role, "", "", org, ""] )
    return rows


def profiles_12() -> list[list[str]]:
    rows = [
    ["sourcedId", "status", "dateLastModified", "userSourcedId", "profileType", "vendorId", "applicationId", "description", "credentialType", "username", "password"] ]
    rows += [[f"UP-{p[0]}", "", "", p[0], "sso", "v", "a", "", "password", p[6] or p[0], PASSWORD] for p in PEOPLE ]
    return rows


def set_files(version: str) -> dict[str, bytes]:
    """The valid set of OneRoster `version` ("1.1" or "1.2"), file name -> bytes."""
    modes = dict.fromkeys(READ_FILES, "bulk") | dict.fromkeys(ABSENT_FILES, "absent")
    files = {
        "orgs.csv": ORGS, "academicSessions.csv": SESSIONS, "courses.csv": COURSES,
        "classes.csv": CLASSES, "enrollments.csv": ENROLLMENTS,
    }  # fmt: skip
    tables: dict[str, Table] = dict(files)
    if version == "1.1":
        modes["demographics"] = "bulk"
        tables["users.csv"] = users_11()
        tables["demographics.csv"] = [
    ["sourcedId", "birthDate", "sex"],
    ["S1", "2018-04-02", "female"],
]
    else:
        modes |= {"roles": "bulk", "userProfiles": "bulk", "demographics": "absent"}
        tables["users.csv"] = users_12()
        tables["roles.csv"] = roles_12()
        tables["userProfiles.csv"] = profiles_12()
    out = {"manifest.csv": csv_bytes(manifest(version, modes))}
    out.update({name: csv_bytes(rows) for name, rows in tables.items()})
    return out


def broken_files() -> dict[str, bytes]:
    """A OneRoster 1.1 set with one of each mistake (tests/fixtures/oneroster/broken)."""
    files = set_files("1.1")
    orgs = [*ORGS, ["SCH3", "", "", "Pine School", "campus", "103", "D1", ""],
    ["SCH1", "", "", "Again", "school", "", "", ""],
]
    users = users_11()
    users.append(["T400", "", "", "true", "SCH1", "teacher", "t400", "", "Ken", "Watanabe", "", "", "ken@sakura.example", "", "", "", "", "", "", ""])
    users.append(["T100", "", "", "true", "SCH1", "teacher", "x", "", "Dup", "Licate", "", "", "dup@x.example", "", "", "", "", "", "", ""] )
    users.append(["S9", "", "", "true", "SCH1", "pupil", "s9", "", "Bad", "Role", "", "", "s9@x.example", "", "", "", "", "", "", ""] )
    users.append(["S10", "", "", "true", "SCH1", "student", "s10", "", "", "NoGiven", "", "", "s10@x.example", "", "", "", "03", "", "", ""] )
    users.append(["S11", "", "", "true", "SCH9", "student", "s11", "", "Lost", "School", "", "", "s11@x.example", "", "", "", "03", "", "", ""] )
    sessions = [*SESSIONS, ["T3", "", "", "Summer", "quarter", "2027-13-01", "2027-08-01", "", "2027"],
]
    classes = [*CLASSES, ["CL4", "", "", "Art", "", "C9", "", "lecture", "", "SCH1", "T1", "", "", ""],
]
    enrollments = [*ENROLLMENTS]
    enrollments.append(["E10", "", "", "CL1", "SCH1", "T400", "teacher", "true", "", "", ""])
    enrollments.append(["E11", "", "", "CL9", "SCH1", "S1", "student", "", "", "", ""])
    enrollments.append(["E12", "", "", "CL1", "SCH1", "S404", "student", "", "", "", ""])
    enrollments.append(["E13", "", "", "CL2", "SCH2", "S4", "student", "maybe", "", "", ""])
    files["orgs.csv"] = csv_bytes(orgs)
    files["users.csv"] = csv_bytes(users)
    files["academicSessions.csv"] = csv_bytes(sessions)
    files["classes.csv"] = csv_bytes(classes)
    files["enrollments.csv"] = csv_bytes(enrollments)
    return files
# fmt: on


def write_files(folder: Path, files: Mapping[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def zip_folder(folder: Path, target: Path, *, prefix: str = "") -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, prefix + path.name)
    return target


def check_set(path: Path, settings: TenantSettings | None = None) -> Checked:
    """Validate a OneRoster folder or zip into real staging tables, as `check_folder` does."""
    settings = settings or TenantSettings()
    found = uploadset.find_path(path, settings.input_format)
    problems = ProblemLog(keep=100_000)
    db = Database("sqlite://")
    try:
        with db.read() as conn, Stage(conn) as stage:
            validation = uploadset.validate(found, fingerprints(found), settings, problems, stage)
            stage.flush()
            records: dict[str, list[tuple[Any, ...]]] = {}
            for entity in ENTITIES:
                table = STAGE[entity.name]
                order = [table.c.line, *(table.c[k] for k in entity.key)]
                records[entity.name] = [
                    tuple(r) for r in stage.conn.execute(sa.select(table).order_by(*order))
                ]
            stage.close()
    finally:
        db.close()
    return Checked(validation, list(problems.kept), records)


if __name__ == "__main__":  # regenerate the fixtures
    for name, files in (
        ("v1.1", set_files("1.1")),
        ("v1.2", set_files("1.2")),
        ("broken", broken_files()),
    ):
        write_files(FIXTURES / name, files)
