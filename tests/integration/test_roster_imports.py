"""Imports through the real pipeline: identical uploads, held rows, recorded history."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from daemon.config import Settings
from daemon.notify.skipped import what_skipping_does
from daemon.roster.outcome import ImportReport, ImportState
from daemon.roster.problems import KEEP_PROBLEMS
from daemon.roster.tenant import TenantSettings
from daemon.store.database import Database
from tests.support.clever import FIXTURES, HEADERS, minimal_files, write_csv, write_upload
from tests.support.roster import add_tenant, counts, pipeline_for, roster, run_import, tables


def test_an_unchanged_daily_export_stays_one_identical_upload_warning(
    db: Database, settings: Settings
) -> None:
    add_tenant(db, "acme")
    pipeline = pipeline_for(db, settings)
    first = run_import(pipeline, "acme", FIXTURES / "sis_export")
    warnings = [p.code for p in first.problems]
    before = tables(db, "acme")

    for _day in range(3):
        again = run_import(pipeline, "acme", FIXTURES / "sis_export")

    assert again.state is ImportState.IMPORTED
    assert [p.code for p in again.problems] == [*warnings, "identical_upload"]
    assert again.problems[-1].message.startswith(
        f"the same five files as import #{again.import_id - 1}"
    )
    assert tables(db, "acme") == before


def _district() -> dict[str, list[list[str]]]:
    """Two schools; at SCH1 two teachers, three students, two sections (C2 taught by T2)."""
    return {
        "schools.csv": [["SCH1", "Lincoln"], ["SCH2", "Adams"]],
        "teachers.csv": [
            ["SCH1", "T1", "Ada", "Lovelace", "ada@d.org"],
            ["SCH1", "T2", "Alan", "Turing", "alan@d.org"],
            ["SCH2", "T1", "Ada", "Lovelace", "ada@d.org"],
        ],
        "students.csv": [
            ["SCH1", "S1", "Ann", "Lee", "", "ann", "03"],
            ["SCH1", "S2", "Bob", "Kim", "", "bob", "04"],
            ["SCH1", "S3", "Cy", "Wu", "", "cy", "05"],
            ["SCH2", "S4", "Dee", "Ray", "", "dee", "06"],
        ],
        "sections.csv": [
            ["SCH1", "C1", "T1", "Math", "", ""],
            ["SCH1", "C2", "T2", "Art", "", ""],
            ["SCH2", "C3", "T1", "Music", "", ""],
        ],
        "enrollments.csv": [
            ["SCH1", "C1", "S1"],
            ["SCH1", "C1", "S2"],
            ["SCH1", "C2", "S1"],
            ["SCH1", "C2", "S3"],
            ["SCH2", "C3", "S4"],
        ],
    }


def test_a_problem_drops_the_least_it_requires_and_holds_the_rest(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    add_tenant(db, "acme", TenantSettings(max_row_errors=10))
    pipeline = pipeline_for(db, settings)
    run_import(pipeline, "acme", write_upload(tmp_path / "day1", _district()))
    day1 = roster(db, "acme")
    files = _district()
    files["teachers.csv"][1] = ["SCH1", "T2", "Alan", "Renamed", "not-an-email"]  # held
    files["students.csv"][0] = ["SCH1", "S1", "Ann", "Lee-Smith", "", "ann", "Z9"]  # bad grade
    files["students.csv"][1] = ["SCH1", "S2", "", "Renamed", "", "bob", "04"]  # held
    del files["students.csv"][2]  # S3 left the district, and its enrollment with it
    del files["enrollments.csv"][3]

    report = run_import(pipeline, "acme", write_upload(tmp_path / "day2", files))

    assert report.state is ImportState.IMPORTED_WITH_ERRORS
    day2 = roster(db, "acme")
    assert day2["teachers"] == day1["teachers"]  # T2 kept as it was, not renamed
    # C2 is still taught by T2: the section imports, its link to the held teacher stays.
    assert day2["sections"] == day1["sections"]
    assert day2["section_teachers"] == day1["section_teachers"]
    assert [s["student_id"] for s in day2["students"]] == ["S1", "S2", "S4"]
    # Ann's bad grade costs only the grade: her new name is in, her grade is the old one.
    assert day2["students"][0] == {**day1["students"][0], "last_name": "Lee-Smith"}
    assert day2["students"][1] == day1["students"][1]  # Bob kept as he was
    # S3 left: its enrollment goes with it; Bob's is held with him.
    enrolled = [(e["section_id"], e["student_id"]) for e in day2["enrollments"]]
    assert enrolled == [("C1", "S1"), ("C1", "S2"), ("C2", "S1"), ("C3", "S4")]
    c = counts(report)
    assert (c["teachers"]["held"], c["sections"]["held"], c["students"]["held"]) == (1, 0, 1)
    assert (c["students"]["updated"], c["students"]["deactivated"]) == (1, 1)
    assert c["enrollments"] == {
        "active_before": 5,
        "added": 0,
        "updated": 0,
        "reactivated": 0,
        "deactivated": 1,
        "unchanged": 3,
        "held": 1,
    }
    codes = [(p.severity.value, p.file, p.line, p.column, p.code) for p in report.problems]
    assert [c for c in codes if c[0] != "warning" or c[4] == "bad_grade"] == [
        ("error", "teachers.csv", 3, "teacher_email", "bad_email"),
        ("warning", "students.csv", 2, "grade", "bad_grade"),
        ("error", "students.csv", 3, "first_name", "missing_value"),
        ("error", "sections.csv", 3, "teacher_id", "parent_skipped"),
        ("error", "enrollments.csv", 3, "student_id", "parent_skipped"),
    ]


def test_rows_of_a_school_missing_from_the_upload_follow_it_out(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    add_tenant(db, "acme", TenantSettings(max_row_errors=10, max_deactivate_percent=100))
    pipeline = pipeline_for(db, settings)
    run_import(pipeline, "acme", write_upload(tmp_path / "day1", _district()))
    files = _district()
    files["schools.csv"] = [["SCH1", "Lincoln"]]  # SCH2 closed, its rows still exported

    report = run_import(pipeline, "acme", write_upload(tmp_path / "day2", files))

    assert report.state is ImportState.IMPORTED_WITH_ERRORS
    after = roster(db, "acme")
    for entity in ("schools", "teachers", "students", "sections", "enrollments"):
        assert {r["school_id"] for r in after[entity]} == {"SCH1"}, entity
    assert [p.code for p in report.problems if p.severity == "error"] == ["unknown_school"] * 4


def test_the_rows_of_a_held_school_are_held_with_it(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """A school row with an error keeps the school as it is, and the rows of that school
    too: a new school brings nothing in (no students without their school), a known one's
    records change nothing until its row is fixed."""
    add_tenant(db, "acme", TenantSettings(max_row_errors=100))
    pipeline = pipeline_for(db, settings)
    files = _district()
    files["schools.csv"][1] = ["SCH2", ""]  # a new school without its name
    first = run_import(pipeline, "acme", write_upload(tmp_path / "day1", files))

    assert first.state is ImportState.IMPORTED_WITH_ERRORS
    day1 = roster(db, "acme")
    for entity in ("schools", "teachers", "students", "sections", "enrollments"):
        assert {r["school_id"] for r in day1[entity]} == {"SCH1"}, entity
    errors = [(p.file, p.line, p.code) for p in first.problems if p.severity == "error"]
    assert errors == [
        ("schools.csv", 3, "missing_value"),
        ("teachers.csv", 4, "parent_skipped"),
        ("students.csv", 5, "parent_skipped"),
        ("sections.csv", 4, "parent_skipped"),
        ("enrollments.csv", 6, "parent_skipped"),
    ]
    [skipped] = [p for p in first.problems if p.file == "students.csv"]
    assert skipped.message == (
        "school 'SCH2' was skipped in schools.csv (line 3), so this student is held with it:"
        " it stays as it is"
    )

    run_import(pipeline, "acme", write_upload(tmp_path / "day2", _district()))  # fixed
    files = _district()
    files["schools.csv"][1] = ["SCH2", ""]
    files["students.csv"][3] = ["SCH2", "S4", "Dee", "Renamed", "", "dee", "06"]
    day2 = roster(db, "acme")

    third = run_import(pipeline, "acme", write_upload(tmp_path / "day3", files))

    assert third.state is ImportState.IMPORTED_WITH_ERRORS
    assert roster(db, "acme") == day2  # SCH2's records kept as they were
    assert counts(third)["students"]["held"] == 1


def test_a_held_section_keeps_all_its_teachers(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """A section row with an error is not trusted in any column: its teacher list stays as it
    was, the co-teacher the broken row no longer names included."""
    add_tenant(db, "acme", TenantSettings(max_row_errors=10))
    pipeline = pipeline_for(db, settings)
    files = _district()
    files["teachers.csv"].append(["SCH1", "T3", "Grace", "Hopper", "grace@d.org"])
    day1 = write_upload(tmp_path / "day1", files)
    (day1 / "sections.csv").write_text(
        "school_id,section_id,teacher_id,teacher_2_id,course_name\r\n"
        "SCH1,C1,T1,,Math\r\nSCH1,C2,T2,T3,Art\r\nSCH2,C3,T1,,Music\r\n"
    )
    run_import(pipeline, "acme", day1)
    before = roster(db, "acme")
    assert before["sections"][1]["teachers"] == ["T2", "T3"]
    day2 = write_upload(tmp_path / "day2", files)
    (day2 / "sections.csv").write_text(
        "school_id,section_id,teacher_id,teacher_2_id,course_name,term_start\r\n"
        "SCH1,C1,T1,,Math,\r\nSCH1,C2,,T1,Art,\r\nSCH2,C3,T1,,Music,\r\n"
    )

    report = run_import(pipeline, "acme", day2)

    assert report.state is ImportState.IMPORTED_WITH_ERRORS
    errors = [p.code for p in report.problems if p.severity == "error"]
    assert errors == ["missing_value", "parent_skipped", "parent_skipped"]  # C2 and its pupils
    assert roster(db, "acme") == before
    assert counts(report)["section_teachers"]["deactivated"] == 0

    # T3 leaves the district; the section row still names them as its co-teacher: that costs
    # only the link, deactivated with T3 (no active link to an inactive teacher).
    files["teachers.csv"].pop()
    day3 = write_upload(tmp_path / "day3", files)
    (day3 / "sections.csv").write_text((day1 / "sections.csv").read_text())

    report = run_import(pipeline, "acme", day3)

    assert report.state is ImportState.IMPORTED_WITH_ERRORS
    errors = [p.code for p in report.problems if p.severity == "error"]
    assert errors == ["unknown_teacher"]
    assert [t["teacher_id"] for t in roster(db, "acme")["teachers"]] == ["T1", "T2", "T1"]
    assert counts(report)["section_teachers"]["deactivated"] == 1
    assert roster(db, "acme")["sections"][1]["teachers"] == ["T2"]


ODD = {
    "escapes": ["\\N", "C:\\path\\", "emoji 🎓", "'; DROP TABLE x; --", "Ω≈ç√ 漢字", "{0} {x}"],
    "separators": ["tab\there", "two\nlines", "carriage\rreturn", "plain"],
    "lookalikes": ["None", "True", "NULL", "f"],
}
SPACES = str.maketrans("\t\n\r", "   ")


@pytest.mark.parametrize("kind", ODD)
def test_odd_values_survive_the_bulk_load_of_either_database(
    db: Database, settings: Settings, tmp_path: Path, kind: str
) -> None:
    """COPY's text format gives backslashes, tabs, newlines and \\N a meaning; JSON gives
    quotes one; and a value that reads like a null or a boolean is still text."""
    odd = ODD[kind]
    add_tenant(db, "acme")
    folder = write_upload(tmp_path / "upload", minimal_files())
    # No Clever value may span lines (line_break_in_value): those go in the extra column only.
    names = [v if "\n" not in v and "\r" not in v else f"name {n}" for n, v in enumerate(odd)]
    rows = [
        ["SCH1", f"S{n}", name, name, "", f"user{n}", "03", value]
        for n, (name, value) in enumerate(zip(names, odd, strict=True), start=1)
    ]
    header = [*HEADERS["students.csv"], 'Odd {name} "q"']
    write_csv(folder / "students.csv", header, rows)
    (folder / "enrollments.csv").write_text("school_id,section_id,student_id\nSCH1,SEC1,S1\n")

    report = run_import(pipeline_for(db, settings), "acme", folder)

    assert report.state is ImportState.IMPORTED, report.problems
    students = roster(db, "acme")["students"]
    # Tabs and line breaks in a value become spaces (warning whitespace_normalised).
    stored = [v.translate(SPACES) for v in odd]
    assert [(s["first_name"], s["last_name"]) for s in students] == [
        (v, v) for v in (name.translate(SPACES) for name in names)
    ]
    assert [s["extra"] for s in students] == [{'odd {name} "q"': v} for v in stored]


def test_a_repeated_row_of_a_held_record_is_counted_once(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    add_tenant(db, "acme", TenantSettings(max_row_errors=10))
    pipeline = pipeline_for(db, settings)
    run_import(pipeline, "acme", write_upload(tmp_path / "day1", _district()))
    files = _district()
    files["students.csv"][1][2] = ""  # S2 held, and its enrollment in C1 with it
    files["enrollments.csv"].append(["SCH1", "C1", "S2"])  # the same enrollment again

    report = run_import(pipeline, "acme", write_upload(tmp_path / "day2", files))

    assert report.state is ImportState.IMPORTED_WITH_ERRORS
    assert counts(report)["enrollments"] == {
        "active_before": 5,
        "added": 0,
        "updated": 0,
        "reactivated": 0,
        "deactivated": 0,
        "unchanged": 4,
        "held": 1,
    }


def test_records_deactivated_although_a_skipped_row_named_them_are_counted_apart(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """A student whose row names an unknown school cannot be held (which record would it
    be?): they and their enrollments are deactivated, and the plan says that the upload
    named them, so no email can call them "left as they are"."""
    add_tenant(db, "acme", TenantSettings(max_row_errors=10))
    pipeline = pipeline_for(db, settings)
    run_import(pipeline, "acme", write_upload(tmp_path / "day1", _district()))
    files = _district()
    files["students.csv"][2] = ["SCH7", "S3", "Cy", "Wu", "", "cy", "05"]  # unknown school
    files["students.csv"][1] = ["SCH1", "S2", "", "Kim", "", "bob", "04"]  # held

    report = run_import(pipeline, "acme", write_upload(tmp_path / "day2", files))

    c = report.entities
    assert (c["students"].deactivated, c["students"].deactivated_skipped) == (1, 1)
    assert c["students"].held == 1
    # S3's enrollment in C2 is still in enrollments.csv: skipped with its student, and gone.
    assert (c["enrollments"].deactivated, c["enrollments"].deactivated_skipped) == (1, 1)
    assert c["enrollments"].held == 1  # Bob's in C1
    assert [s["student_id"] for s in roster(db, "acme")["students"]] == ["S1", "S2", "S4"]
    # Leaving the upload altogether is a plain deactivation, named by no row.
    del files["students.csv"][3]
    del files["enrollments.csv"][4]
    report = run_import(pipeline, "acme", write_upload(tmp_path / "day3", files))
    students = report.entities["students"]
    assert (students.deactivated, students.deactivated_skipped) == (1, 0)


def test_an_identical_upload_reports_every_problem_of_the_import_it_matches(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """More problems than the database keeps: the totals and the report CSV stay exact."""
    add_tenant(db, "acme")
    pipeline = pipeline_for(db, settings)
    files = minimal_files()
    files["students.csv"] = [
        ["SCH1", f"S{n}", "Ann", "Lee", "", f"u{n}", f"Z{n}"] for n in range(KEEP_PROBLEMS + 200)
    ]
    files["enrollments.csv"] = [["SCH1", "SEC1", "S1"]]
    folder = write_upload(tmp_path / "upload", files)
    first = run_import(pipeline, "acme", folder)
    assert first.problem_totals["warning"] > KEEP_PROBLEMS

    for _day in range(2):
        again = run_import(pipeline, "acme", folder)

    assert again.state is ImportState.IMPORTED
    expected = {**first.problem_totals, "warning": first.problem_totals["warning"] + 1}
    assert again.problem_totals == expected
    assert [p.code for p in again.problems[-2:]] == ["bad_grade", "identical_upload"]

    def report_rows(report: ImportReport) -> list[list[str]]:
        assert report.report_csv is not None
        with report.report_csv.open(encoding="utf-8", newline="") as handle:
            return list(csv.reader(handle))

    assert report_rows(again) == [*report_rows(first), report_rows(again)[-1]]
    assert report_rows(again)[-1][1] == "identical_upload"


def test_a_teacher_listed_under_another_school_is_shown_in_name_order(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    add_tenant(db, "acme", TenantSettings(max_row_errors=0))
    files = _district()
    files["teachers.csv"].append(["SCH2", "T9", "Zoë", "Zed", "zed@d.org"])  # SCH2's only
    folder = write_upload(tmp_path / "upload", files)
    (folder / "sections.csv").write_text(
        "school_id,section_id,teacher_id,teacher_2_id,teacher_3_id,course_name\r\n"
        "SCH1,C1,T1,T9,T2,Math\r\nSCH1,C2,T2,,,Art\r\nSCH2,C3,T1,,,Music\r\n"
    )

    report = run_import(pipeline_for(db, settings), "acme", folder)

    assert report.state is ImportState.IMPORTED  # a warning, not an error
    codes = [p.code for p in report.problems if p.file == "sections.csv"]
    assert codes == ["absent_column", "teacher_other_school"]  # no term dates; T9 at SCH2
    sections = {s["section_id"]: s for s in roster(db, "acme")["sections"]}
    assert sections["C1"]["teachers"] == ["T1", "T2", "T9"]  # Turing before Zed


def test_a_new_record_whose_optional_value_was_dropped_stores_it_empty(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    add_tenant(db, "acme")
    pipeline = pipeline_for(db, settings)
    run_import(pipeline, "acme", write_upload(tmp_path / "day1", _district()))
    files = _district()
    files["students.csv"].append(["SCH1", "S9", "Neo", "New", "", "neo", "Z9"])  # bad grade

    run_import(pipeline, "acme", write_upload(tmp_path / "day2", files))

    students = {s["student_id"]: s for s in roster(db, "acme")["students"]}
    assert students["S9"]["grade"] == ""  # as a first import stores it, and docs/schema.md says


def test_a_row_that_cannot_be_read_whole_still_names_its_record(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """An unquoted "Smith, Jr." gives the row a value too many: the student cannot be read,
    so they are deactivated; the plan and their enrollments' problems say why."""
    add_tenant(db, "acme", TenantSettings(max_row_errors=10))
    pipeline = pipeline_for(db, settings)
    run_import(pipeline, "acme", write_upload(tmp_path / "day1", _district()))
    folder = write_upload(tmp_path / "day2", _district())
    students = (folder / "students.csv").read_text().splitlines()
    students[2] = "SCH1,S2,Bob,Kim, Jr.,,bob,04"  # line 3
    (folder / "students.csv").write_text("\r\n".join(students) + "\r\n")

    report = run_import(pipeline, "acme", folder)

    assert (
        report.entities["students"].deactivated,
        report.entities["students"].deactivated_skipped,
    ) == (1, 1)
    [enrollment] = [p for p in report.problems if p.file == "enrollments.csv"]
    assert (enrollment.code, enrollment.message) == (
        "parent_skipped",
        "student_id 'S2' was skipped in students.csv (line 3), so this enrollment is skipped too",
    )


def test_a_held_row_of_a_new_record_is_counted_as_not_imported(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """Held means "kept as it is" only for a record the roster has: a new teacher whose row
    is skipped is simply not imported, and the emails must say so."""
    add_tenant(db, "acme", TenantSettings(max_row_errors=10))
    pipeline = pipeline_for(db, settings)
    files = _district()
    files["teachers.csv"].append(["SCH1", "T7", "Nia", "New", "no email"])  # new, held
    first = run_import(pipeline, "acme", write_upload(tmp_path / "day1", files))
    files["teachers.csv"][1] = ["SCH1", "T2", "Alan", "Turing", "no email"]  # known, held

    second = run_import(pipeline, "acme", write_upload(tmp_path / "day2", files))

    assert (first.entities["teachers"].held, first.entities["teachers"].held_new) == (1, 1)
    assert (second.entities["teachers"].held, second.entities["teachers"].held_new) == (2, 1)
    sentences = what_skipping_does(2, second.entities, applied=True)
    assert sentences[1:] == [
        "1 teacher and 1 section teacher assignment were held: kept as they were.",  # T2, C2
        "1 teacher was not imported: it is new and its row was skipped.",  # T7
    ]
