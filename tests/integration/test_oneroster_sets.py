"""Validating OneRoster sets as districts' SIS exports them: every record as it is staged for
the roster, every problem with its file, line and column, and what the manifest's words mean.

The fixtures (tests/fixtures/oneroster/) quote every field and end lines with CRLF; they have
extension columns, Japanese names, a parent, a teacher at two schools and a password column.
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import date
from pathlib import Path

import pytest

from daemon import uploadset
from daemon.config import DataPaths, SpoolSettings
from daemon.roster.tenant import TenantSettings
from daemon.spool import ReadySet, Spool
from tests.support.clever import Checked
from tests.support.oneroster import (
    FIXTURES,
    PASSWORD,
    broken_files,
    check_set,
    csv_bytes,
    manifest,
    set_files,
    write_files,
    zip_folder,
)

EXPECTED_SECTIONS = [
    ("SCH1", "CL1", "T100", "Mathematics 3", date(2026, 8, 15), date(2027, 6, 10)),
    ("SCH2", "CL2", "T300", "国語 (Japanese)", date(2026, 8, 15), date(2026, 12, 20)),
    ("SCH2", "CL3", "T200", "Homeroom", date(2027, 1, 5), date(2027, 6, 10)),
]
EXPECTED_STUDENTS = [
    ("SCH1", "S1", "陽菜", "高橋", "hina.takahashi@students.sakura.example", "htakahashi", "03"),
    ("SCH1", "S2", "Liam", "Nguyen", "", "lnguyen", "03"),
    ("SCH2", "S3", "さくら", "山本", "sakura.yamamoto@students.sakura.example", "", "09"),
    ("SCH2", "S4", "Zoë", '"Zee" Müller', "zoe.muller@students.sakura.example", "zmuller", "09"),
]


def without_extra(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return [r[:-1] for r in rows]


def assert_the_sakura_roster(checked: Checked) -> None:
    assert not checked.validation.fatal
    assert checked.validation.error_rows == 0
    assert [r[:2] for r in checked.fresh("schools")] == [
        ("SCH1", "Sakura Elementary"),
        ("SCH2", 'Maple "North" High, Campus B'),
    ]  # the district org is no school
    assert without_extra(checked.fresh("students")) == EXPECTED_STUDENTS  # the parent is not
    assert [r[:2] for r in checked.fresh("teachers")] == [
        ("SCH1", "T100"),
        ("SCH1", "T200"),
        ("SCH2", "T200"),
        ("SCH2", "T300"),
    ]  # fmt: skip  (Mary O'Brien teaches at both schools: one record each)
    assert without_extra(checked.fresh("sections")) == EXPECTED_SECTIONS
    assert sorted(checked.fresh("section_teachers")) == [
        ("SCH1", "CL1", "T100", 1),  # primary=true, although listed after T200
        ("SCH1", "CL1", "T200", 2),
        ("SCH2", "CL2", "T300", 1),
        ("SCH2", "CL3", "T200", 1),
    ]
    assert sorted(checked.fresh("enrollments")) == [
        ("SCH1", "CL1", "S1"), ("SCH1", "CL1", "S2"), ("SCH2", "CL2", "S3"),
        ("SCH2", "CL2", "S4"), ("SCH2", "CL3", "S3"),
    ]  # fmt: skip
    extra = json.loads(checked.fresh("sections")[0][-1])
    assert (extra["ext_room_capacity"], extra["classType"]) == ("28", "scheduled")
    assert json.loads(checked.fresh("schools")[0][-1])["metadata.nces_id"] == "0600002"
    staged = json.dumps(checked.records, default=str, ensure_ascii=False)
    assert PASSWORD not in staged
    assert PASSWORD not in json.dumps([p.as_dict() for p in checked.problems], ensure_ascii=False)
    counts = {name: (f.rows, f.errors) for name, f in checked.validation.files.items()}
    assert counts["users.csv (students)"] == (4, 0)
    assert counts["users.csv (teachers)"] == (3, 0)
    assert counts["users.csv (other roles)"] == (1, 0)
    assert counts["enrollments.csv (teachers)"] == (4, 0)
    assert counts["enrollments.csv (students)"] == (5, 0)


def test_a_oneroster_1_1_set_maps_onto_the_roster() -> None:
    checked = check_set(FIXTURES / "v1.1")
    assert_the_sakura_roster(checked)
    extra = json.loads(checked.fresh("students")[0][-1])
    assert extra == {
        "enabledUser": "true", "ext_house": "Kaede", "identifier": "ID-S1", "metadata.lang": "ja",
    }  # fmt: skip
    assert ("warning", "users.csv", 1, "password", "secret_column") in checked.codes()
    assert ("warning", "demographics.csv", None, None, "unused_file") in checked.codes()
    assert ("warning", "users.csv", 9, "role", "other_role") in checked.codes()


def test_a_oneroster_1_2_set_takes_roles_from_roles_csv_and_never_reads_user_profiles() -> None:
    checked = check_set(FIXTURES / "v1.2")
    assert_the_sakura_roster(checked)
    assert ("warning", "userProfiles.csv", None, None, "secret_file") in checked.codes()
    assert "absent_column" not in {p.code for p in checked.problems}  # no role column needed


@pytest.mark.parametrize("prefix", ["", "export/"], ids=["top", "in-a-folder"])
def test_a_zip_reads_exactly_as_its_loose_files(tmp_path: Path, prefix: str) -> None:
    loose = check_set(FIXTURES / "v1.2")
    zipped = check_set(zip_folder(FIXTURES / "v1.2", tmp_path / "roster.zip", prefix=prefix))
    assert zipped.records == loose.records
    assert zipped.codes() == loose.codes()


def test_the_broken_set_names_each_mistake_by_file_line_and_column() -> None:
    checked = check_set(FIXTURES / "broken")
    assert not checked.validation.fatal
    errors = [c for c in checked.codes() if c[0] == "error"]
    assert errors == [
        ("error", "orgs.csv", 5, "type", "bad_enum"),
        ("error", "orgs.csv", 6, "sourcedId", "duplicate_id"),
        ("error", "users.csv", 11, "sourcedId", "duplicate_id"),
        ("error", "users.csv", 12, "role", "bad_enum"),
        ("error", "users.csv", 13, "givenName", "missing_value"),
        ("error", "users.csv", 14, "orgSourcedIds", "unknown_school"),
        ("error", "academicSessions.csv", 5, "type", "bad_enum"),
        ("error", "academicSessions.csv", 5, "startDate", "bad_date"),
        ("error", "classes.csv", 5, "courseSourcedId", "unknown_reference"),
        ("error", "enrollments.csv", 11, "primary", "two_primary_teachers"),
        ("error", "enrollments.csv", 12, "classSourcedId", "unknown_reference"),
        ("error", "enrollments.csv", 13, "userSourcedId", "unknown_reference"),
    ]
    warnings = {(c[1], c[2], c[3], c[4]) for c in checked.codes() if c[0] == "warning"}
    assert ("classes.csv", 5, "classType", "bad_enum") in warnings
    assert ("enrollments.csv", 14, "primary", "bad_enum") in warnings
    assert ("enrollments.csv", 14, None, "duplicate_row") in warnings
    # S10 has no givenName: held (kept as the roster has it), not deactivated.
    assert checked.held("students") == [("SCH1", "S10", None, None, None, None, None, None)]
    # T400 claimed primary on a class that had one: linked, as a co-teacher.
    assert ("SCH1", "CL1", "T400", 3) in checked.fresh("section_teachers")
    messages = {(p.file, p.line, p.code): p.message for p in checked.problems}
    assert messages["enrollments.csv", 11, "two_primary_teachers"] == (
        "a second primary teacher for class 'CL1' (the first is on line 3): OneRoster allows"
        " one; 'T400' is linked as a co-teacher"
    )
    assert messages["orgs.csv", 5, "bad_enum"] == (
        "type 'campus' is not one of department, school, district, local, state, national"
    )
    assert checked.validation.files["users.csv (students)"].errors == 2


def with_manifest(tmp_path: Path, modes: dict[str, str], version: str = "1.1") -> Path:
    files = set_files("1.1")
    files["manifest.csv"] = csv_bytes(manifest(version, modes))
    return write_files(tmp_path / "set", files)


BULK = dict.fromkeys(
    ("orgs", "users", "academicSessions", "courses", "classes", "enrollments"), "bulk"
)


def fatal(checked: Checked) -> list[tuple[str | None, str | None, str, str]]:
    return [
        (p.file, p.column, p.code, p.message) for p in checked.problems if p.severity == "fatal"
    ]


def test_delta_is_refused_until_supported(tmp_path: Path) -> None:
    checked = check_set(with_manifest(tmp_path, {**BULK, "enrollments": "delta"}))
    assert checked.validation.fatal
    assert fatal(checked) == [(
        "manifest.csv", "file.enrollments", "delta_refused",
        "file.enrollments is delta: rosterdrop imports OneRoster bulk sets only (each upload is"
        " the full snapshot); set the export to bulk",
    )]  # fmt: skip
    assert all(not rows for rows in checked.records.values())


@pytest.mark.parametrize(
    "name", ["orgs", "users", "academicSessions", "courses", "classes", "enrollments"]
)
def test_a_required_file_absent_fails_the_import(tmp_path: Path, name: str) -> None:
    checked = check_set(with_manifest(tmp_path, {**BULK, name: "absent"}))
    assert [(f, c, code) for f, c, code, _ in fatal(checked)] == [
        ("manifest.csv", f"file.{name}", "absent_file")
    ]
    assert fatal(checked)[0][3].startswith(
        f"{name}.csv is absent (file.{name}): rosterdrop needs it"
    )


def test_a_file_the_manifest_does_not_name_is_absent(tmp_path: Path) -> None:
    modes = dict(BULK)
    del modes["courses"]  # not listed at all: absent, as OneRoster says
    checked = check_set(with_manifest(tmp_path, modes))
    assert [c for _, c, c2, _ in fatal(checked) for c in [c2]] == ["absent_file"]


def test_a_bulk_file_missing_from_the_set_is_fatal_and_the_set_waits_for_it(tmp_path: Path) -> None:
    folder = with_manifest(tmp_path, BULK)
    (folder / "courses.csv").unlink()
    found = uploadset.find(folder)
    assert found.missing == ["courses.csv"]  # the watcher leaves an incomplete set alone
    checked = check_set(folder)
    assert [(f, code) for f, _, code, _ in fatal(checked)] == [("courses.csv", "missing_file")]


@pytest.mark.parametrize(
    ("version", "message"),
    [("2.0", "oneroster.version is '2.0'"), ("", "oneroster.version is missing")],
)
def test_an_unknown_version_is_fatal(tmp_path: Path, version: str, message: str) -> None:
    checked = check_set(with_manifest(tmp_path, BULK, version))
    assert fatal(checked)[0][3].startswith(message)


def test_a_users_csv_without_roles_needs_roles_csv(tmp_path: Path) -> None:
    files = set_files("1.2")
    del files["roles.csv"]
    files["manifest.csv"] = files["manifest.csv"].replace(
        b'"file.roles","bulk"', b'"file.roles","absent"'
    )
    checked = check_set(write_files(tmp_path / "set", files))
    assert [(f, c, code) for f, c, code, _ in fatal(checked)] == [
        ("users.csv", "role", "missing_column"),
        ("users.csv", "orgSourcedIds", "missing_column"),
    ]


def test_tobedeleted_rows_are_left_out_of_the_snapshot(tmp_path: Path) -> None:
    files = set_files("1.1")
    text = files["users.csv"].decode().replace('"S2","",', '"S2","tobedeleted",', 1)
    files["users.csv"] = text.encode()
    checked = check_set(write_files(tmp_path / "set", files))
    assert checked.validation.error_rows == 0
    assert "S2" not in {r[1] for r in checked.fresh("students")}
    assert ("SCH1", "CL1", "S2") not in checked.fresh("enrollments")
    codes = {(c[1], c[4]) for c in checked.codes()}
    assert ("users.csv", "tobedeleted") in codes
    assert ("enrollments.csv", "tobedeleted") in codes


def test_an_unreadable_manifest_fails_with_its_reason(tmp_path: Path) -> None:
    files = set_files("1.1")
    files["manifest.csv"] = b"name,what\r\nfile.users,bulk\r\n"
    checked = check_set(write_files(tmp_path / "set", files))
    assert fatal(checked) == [
        (
            "manifest.csv",
            None,
            "bad_manifest",
            "manifest.csv cannot be read: its header must be propertyName,value",
        )
    ]


def test_the_format_is_told_from_the_files_or_fixed_by_the_tenant(tmp_path: Path) -> None:
    loose = shutil.copytree(FIXTURES / "v1.1", tmp_path / "loose")
    assert uploadset.detect(loose) == "oneroster"
    zipped = tmp_path / "zipped"
    zipped.mkdir()
    zip_folder(FIXTURES / "v1.1", zipped / "export.zip")
    assert uploadset.detect(zipped) == "oneroster"
    (zipped / "students.csv").write_bytes(b"school_id\n")
    assert uploadset.detect(zipped) == "clever"  # a zip beside Clever files is not a set
    found = uploadset.find(loose, "clever")
    assert (found.format, "schools.csv" in found.missing) == ("clever", True)
    settings = TenantSettings().updated(input_format="oneroster")
    assert check_set(zipped / "export.zip", settings).validation.files


def test_the_broken_fixture_is_what_the_generator_writes() -> None:
    for name, data in broken_files().items():
        assert (FIXTURES / "broken" / name).read_bytes() == data
    for version in ("1.1", "1.2"):
        for name, data in set_files(version).items():
            assert (FIXTURES / f"v{version}" / name).read_bytes() == data
            assert data.count(b"\r\n") == data.count(b"\n")  # CRLF, every line


def test_a_class_without_a_teacher_is_skipped_with_its_enrollments(tmp_path: Path) -> None:
    files = set_files("1.1")
    text = files["enrollments.csv"].decode()
    files["enrollments.csv"] = text.replace(
        '"E8","","","CL3","SCH2","T200","teacher"', '"E8","","","CL3","SCH2","T200","aide"'
    ).encode()
    checked = check_set(write_files(tmp_path / "set", files))
    assert [c for c in checked.codes() if c[0] == "error"] == [
        ("error", "classes.csv", 4, "sourcedId", "no_teacher"),
        ("error", "enrollments.csv", 10, "classSourcedId", "parent_skipped"),
    ]
    assert "CL3" not in {r[1] for r in checked.fresh("sections")}
    assert checked.validation.files["classes.csv"].errors == 1


def test_the_watcher_claims_a_set_once_every_bulk_file_is_there(tmp_path: Path) -> None:
    paths = DataPaths(tmp_path / "data")
    upload = paths.upload_dir("sakura")
    files = set_files("1.1")
    write_files(
        upload, {"manifest.csv": files.pop("manifest.csv"), "orgs.csv": files.pop("orgs.csv")}
    )

    def later() -> float:  # settled long ago, and stale
        return time.time() + 3 * 86400

    spool = Spool(SpoolSettings(), paths, clock=later)
    ready, stuck, _ = spool.scan()
    assert ready == []
    assert [(s.present, s.missing) for s in stuck] == [(
        ["manifest.csv", "orgs.csv"],
        # in the manifest's order
        ["academicSessions.csv", "classes.csv", "courses.csv", "enrollments.csv", "users.csv",
         "demographics.csv"],
    )]  # fmt: skip
    write_files(upload, files)
    assert spool.scan()[0] == [ReadySet("sakura", upload)]
    pinned = Spool(SpoolSettings(), paths, clock=later, input_format=lambda tenant: "clever")
    assert pinned.scan()[0] == []  # a tenant pinned to Clever waits for the five files


def test_extras_follow_the_tenants_rules_and_secret_columns_are_never_read(tmp_path: Path) -> None:
    files = set_files("1.1")
    lines = files["users.csv"].decode().split("\r\n")
    lines = [
        f'{line},"{"ext_locker_pin" if n == 0 else "4711"}"' if line else line
        for n, line in enumerate(lines)
    ]
    files["users.csv"] = "\r\n".join(lines).encode()
    folder = write_files(tmp_path / "set", files)
    checked = check_set(folder)
    assert ("warning", "users.csv", 1, "ext_locker_pin", "secret_column") in checked.codes()
    assert "4711" not in json.dumps(checked.records, default=str)
    assert "ext_locker_pin" not in json.loads(checked.fresh("students")[0][-1])
    plain = check_set(folder, TenantSettings(keep_extra_columns=False))
    assert {r[-1] for r in plain.fresh("students")} == {None}
    assert {r[-1] for r in plain.fresh("sections")} == {None}
    own = check_set(folder, TenantSettings(secret_columns=("house",)))
    assert "Kaede" not in json.dumps(own.records, default=str, ensure_ascii=False)  # ext_house
