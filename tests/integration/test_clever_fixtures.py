"""Validating uploads shaped like real SIS exports: every problem exact, every record as stored.

Each test runs with every engine (columnar, batched, careful row by row): all must agree on
every record and every problem.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from daemon.clever.header import MAX_COLUMNS
from daemon.clever.validate import ENGINES, Engine
from daemon.roster.problems import MAX_MESSAGE_CHARS
from daemon.roster.tenant import TenantSettings
from tests.support.clever import FIXTURES, check_folder, minimal_files, write_upload
from tests.support.sample import PASSWORDS, SAMPLE
from tests.support.sample import RECORDS as SAMPLE_RECORDS

pytestmark = pytest.mark.parametrize("engine", ENGINES)


def test_a_real_sis_export_imports_with_warnings_only(engine: Engine) -> None:
    checked = check_folder(FIXTURES / "sis_export", engine=engine)

    assert not checked.validation.fatal
    assert checked.validation.error_rows == 0
    assert checked.codes() == [
        ("warning", "schools.csv", 1, None, "extra_columns"),
        ("warning", "teachers.csv", 1, None, "extra_columns"),
        ("warning", "teachers.csv", 2, "teacher_email", "email_lowercased"),
        ("warning", "students.csv", 1, None, "extra_columns"),
        ("warning", "students.csv", 2, "grade", "grade_replaced"),
        # Mary's two-line address spans lines 2-3, so José is on line 4, as an editor shows it.
        ("warning", "students.csv", 2, "student_street", "whitespace_normalised"),
        ("warning", "students.csv", 4, "grade", "grade_replaced"),
        ("warning", "students.csv", 5, "grade", "grade_replaced"),
        ("warning", "students.csv", 8, "student_email", "email_lowercased"),
        ("warning", "students.csv", 9, None, "blank_rows"),
        ("warning", "sections.csv", 1, None, "extra_columns"),
        ("warning", "sections.csv", 2, "term_end", "date_normalised"),
        ("warning", "sections.csv", 3, "term_start", "date_normalised"),
        ("warning", "enrollments.csv", 5, None, "duplicate_row"),
    ]
    messages = {(p.file, p.line, p.code): p.message for p in checked.problems}
    assert messages["students.csv", 2, "whitespace_normalised"].endswith(
        "on 2 rows (first on line 2)"
    )
    assert messages["students.csv", 9, "blank_rows"] == "3 blank rows ignored (first on line 9)"
    assert messages["students.csv", 2, "grade_replaced"] == (
        "grade 'K' replaced by 'KG' on 1 row (first on line 2)"
    )
    assert messages["sections.csv", 2, "date_normalised"] == (
        "dates rewritten as YYYY-MM-DD on 2 rows (first on line 2)"
    )
    assert messages["schools.csv", 1, "extra_columns"] == (
        "extra columns kept with each record: principal"
    )
    assert messages["enrollments.csv", 5, "duplicate_row"] == (
        "the same enrollment as line 2; ignored"
    )

    assert checked.fresh("schools") == [
        ("SCH1", "Lincoln Elementary, North", '{"principal": "Dr. Ruiz"}'),
        ("SCH2", "Escuela Peña", None),
    ]
    assert checked.fresh("teachers") == [
        ("SCH1", "T1", "Ada", "Lovelace, PhD", "ada@district.org", '{"title": "Ms."}'),
        ("SCH1", "T2", "Siobhán", "O'Brien", "o'brien@district.org", None),
        ("SCH1", "T3", "Zoë", "Müller", "zoe@district.org", None),
        ("SCH1", "T4", "Jae", "Kim", "kim@district.org", None),
        ("SCH1", "T5", "Abe", "Kim", "abe@district.org", None),
        ("SCH1", "T6", "Rosa", "de la Cruz", "delacruz@district.org", None),
        # the same teacher at a second school is a second record, not a duplicate
        ("SCH2", "T1", "Ada", "Lovelace, PhD", "ada@district.org", None),
    ]
    mary = '{"dob": "2019-01-01", "gender": "F", "state_id": "ST1", '
    mary += '"student_street": "12 Elm St Apt 3"}'
    jose = '{"gender": "M", "state_id": "ST2"}'
    assert checked.fresh("students") == [
        ("SCH1", "S1", "Mary Ann", "Smith", "mary@x.org", "mary", "KG", mary),
        ("SCH1", "S2", "José", "Smith, Jr.", "", "jose", "01", jose),
        ("SCH1", "S3", "Li", "Wu", "li@x.org", "", "KG", None),
        ("SCH2", "S1", "Mary Ann", "Smith", "mary@x.org", "mary", "01", mary),
        ("SCH2", "S4", "Noël", "Ørsted", "noel@x.org", "", "PK", '{"gender": "X"}'),
    ]
    year = (date(2026, 8, 15), date(2027, 6, 10))
    assert checked.fresh("sections") == [
        ("SCH1", "SEC1", "T1", 'Computer Science "AP"', *year, '{"period": "1"}'),
        ("SCH1", "SEC2", "T2", "Algebra", *year, '{"period": "2"}'),
        ("SCH1", "SEC3", "T4", "Art, Music & Drama", None, None, '{"period": "3"}'),
        ("SCH2", "SEC4", "T1", "Música", *year, None),
    ]
    assert sorted(checked.fresh("section_teachers")) == [
        ("SCH1", "SEC1", "T1", 1),
        ("SCH1", "SEC1", "T2", 3),
        ("SCH1", "SEC1", "T3", 2),
        ("SCH1", "SEC2", "T1", 2),
        ("SCH1", "SEC2", "T2", 1),
        ("SCH1", "SEC2", "T4", 4),
        ("SCH1", "SEC2", "T5", 3),
        ("SCH1", "SEC3", "T3", 3),
        ("SCH1", "SEC3", "T4", 1),
        ("SCH1", "SEC3", "T6", 2),
        ("SCH2", "SEC4", "T1", 1),
    ]
    assert checked.fresh("enrollments") == [
        ("SCH1", "SEC1", "S1"),
        ("SCH1", "SEC1", "S2"),
        ("SCH1", "SEC2", "S3"),
        ("SCH2", "SEC4", "S1"),
        ("SCH2", "SEC4", "S4"),
        ("SCH1", "SEC3", "S2"),
    ]
    files = checked.validation.files
    assert (files["students.csv"].rows, files["enrollments.csv"].rows) == (5, 7)


def test_every_row_error_names_its_file_line_and_column(engine: Engine) -> None:
    checked = check_folder(FIXTURES / "broken_rows", engine=engine)

    assert not checked.validation.fatal
    assert checked.codes() == [
        ("error", "schools.csv", 3, "school_name", "missing_value"),
        ("error", "schools.csv", 4, "school_id", "duplicate_id"),
        ("error", "teachers.csv", 3, "teacher_email", "bad_email"),
        ("error", "teachers.csv", 4, "school_id", "unknown_school"),
        ("error", "teachers.csv", 5, None, "wrong_field_count"),
        ("error", "teachers.csv", 6, None, "wrong_field_count"),
        ("error", "students.csv", 3, "student_email", "missing_login"),
        # a bad optional value costs only the value
        ("warning", "students.csv", 4, "grade", "bad_grade"),
        ("error", "students.csv", 5, "student_id", "duplicate_id"),
        ("error", "students.csv", 6, "student_id", "missing_value"),
        ("error", "students.csv", 8, "first_name", "missing_value"),
        # T2 was skipped: SEC2 is imported, its link to T2 stays as it is
        ("error", "sections.csv", 3, "teacher_id", "parent_skipped"),
        ("error", "sections.csv", 4, "teacher_id", "unknown_teacher"),
        ("warning", "sections.csv", 5, "teacher_2_id", "repeated_teacher"),
        ("warning", "sections.csv", 5, "term_end", "term_order"),
        ("warning", "sections.csv", 6, "term_start", "bad_date"),
        # an unknown co-teacher costs only that link
        ("error", "sections.csv", 7, "teacher_2_id", "unknown_teacher"),
        ("error", "enrollments.csv", 6, "section_id", "parent_skipped"),
        ("error", "enrollments.csv", 7, "section_id", "unknown_reference"),
        ("error", "enrollments.csv", 8, "student_id", "unknown_reference"),
        ("error", "enrollments.csv", 9, "school_id", "unknown_school"),
        ("error", "enrollments.csv", 10, None, "wrong_field_count"),
        ("warning", "enrollments.csv", 3, None, "duplicate_row"),
    ]
    values = {(p.file, p.line, p.code): p.value for p in checked.problems}
    assert values["teachers.csv", 3, "bad_email"] == "not-an-email"
    assert values["students.csv", 4, "bad_grade"] == "Z9"
    assert values["sections.csv", 6, "bad_date"] == "2026-02-30"
    assert values["enrollments.csv", 7, "unknown_reference"] == "SEC9"
    messages = {(p.file, p.line, p.code): p.message for p in checked.problems}
    assert messages["teachers.csv", 5, "wrong_field_count"] == (
        "the row has 4 values but the header has 5 columns"
    )
    assert messages["students.csv", 5, "duplicate_id"] == (
        "student_id 'S1' appears again (first on line 2, school 'SCH1'); skipped"
    )
    assert messages["students.csv", 4, "bad_grade"].endswith(
        "; the value was not imported: the student keeps the grade the roster has (none if new)"
    )
    assert messages["sections.csv", 3, "parent_skipped"] == (
        "teacher_id 'T2' was skipped in teachers.csv (line 3), so their link to this section"
        " stays as it is"
    )
    assert messages["sections.csv", 7, "unknown_teacher"] == (
        "teacher_2_id 'T9' is not in teachers.csv for school 'SCH1', so they are not linked to"
        " this section"
    )
    assert messages["enrollments.csv", 6, "parent_skipped"] == (
        "section_id 'SEC3' was skipped in sections.csv (line 4), so this enrollment is held too:"
        " it stays as it is"
    )
    # Rows per file with at least one error (warnings are not errors).
    errors = {name: f.errors for name, f in checked.validation.files.items()}
    assert errors == {
        "schools.csv": 2,
        "teachers.csv": 4,
        "students.csv": 4,
        "sections.csv": 3,
        "enrollments.csv": 5,
    }


def test_broken_rows_drop_the_least_their_problem_requires(engine: Engine) -> None:
    checked = check_folder(FIXTURES / "broken_rows", engine=engine)

    # A bad required value with the key complete and the school in the upload: the record
    # is held (kept as it is, never deactivated).
    assert checked.held("schools") == [("SCH2", None, None)]
    assert [r[:2] for r in checked.held("teachers")] == [("SCH1", "T2")]
    assert [r[:2] for r in checked.held("students")] == [("SCH1", "S2"), ("SCH1", "S5")]
    # Only SEC3 lost something required (its teacher is in no file).
    assert [r[:2] for r in checked.held("sections")] == [("SCH1", "SEC3")]
    # A bad optional value: the record is imported and keeps the roster's value.
    assert checked.kept("students") == {("SCH1", "S3"): ",grade,"}
    assert checked.kept("sections") == {
        ("SCH1", "SEC4"): ",term_start,term_end,",
        ("SCH1", "SEC5"): ",term_start,",
    }
    # The link to a held teacher is held; the link to T9, in no file, is not made.
    assert sorted(r[:3] for r in checked.held("section_teachers")) == [("SCH1", "SEC2", "T2")]
    assert sorted(r[:3] for r in checked.fresh("section_teachers")) == [
        ("SCH1", "SEC1", "T1"),
        ("SCH1", "SEC4", "T1"),
        ("SCH1", "SEC5", "T1"),
        ("SCH1", "SEC6", "T1"),
    ]
    # Enrollments of a held section are held; those naming a section or student missing
    # from the upload are not (they follow their deactivated parent).
    assert checked.held("enrollments") == [("SCH1", "SEC3", "S1")]
    assert checked.fresh("enrollments") == [
        ("SCH1", "SEC1", "S1"),
        ("SCH1", "SEC1", "S3"),
        ("SCH1", "SEC2", "S1"),
        ("SCH1", "SEC1", "S4"),
    ]
    # No key, unknown school, a duplicate or a misshapen row: skipped, nothing held.
    assert ("SCH9", "T3") not in [r[:2] for r in checked.records["teachers"]]
    assert [r[:2] for r in checked.fresh("teachers")] == [("SCH1", "T1")]
    assert [r[:2] for r in checked.fresh("students")] == [
        ("SCH1", "S1"),
        ("SCH1", "S3"),
        ("SCH1", "S4"),
    ]


def _replace(folder: Path, name: str, data: bytes) -> Path:
    (folder / name).write_bytes(data)
    return folder


def test_a_windows_1252_file_is_decoded_knowingly(engine: Engine, upload: Path) -> None:
    text = "school_id,student_id,first_name,last_name,student_email,username,grade\r\n"
    text += "SCH1,S1,Ann,Lee,ann@students.org,ann,03\r\n"
    text += "SCH1,S2,Ren\u00e9e,C\u00f4t\u00e9,,bob,04\r\n"
    _replace(upload, "students.csv", text.encode("cp1252"))
    assert b"Ren\xe9e" in (upload / "students.csv").read_bytes()

    checked = check_folder(upload, engine=engine)

    assert checked.codes() == [("warning", "students.csv", 3, None, "decoded_as_windows1252")]
    assert "read as Windows-1252" in checked.problems[0].message
    assert checked.fresh("students")[1][:4] == ("SCH1", "S2", "Renée", "Côté")


def test_a_windows_1252_file_fails_when_the_tenant_wants_utf8_only(
    engine: Engine, upload: Path
) -> None:
    text = "school_id,school_name\nSCH1,Lincoln\nSCH2,\u00c9cole Saint-\u00c9tienne\n"
    _replace(upload, "schools.csv", text.encode("cp1252"))

    checked = check_folder(upload, TenantSettings(fallback_encoding=""), engine=engine)

    assert checked.validation.fatal
    assert checked.codes() == [("fatal", "schools.csv", 3, None, "not_utf8")]
    assert "save or export it as UTF-8" in checked.problems[0].message


def test_bytes_that_are_neither_utf8_nor_windows_1252_fail(engine: Engine, upload: Path) -> None:
    _replace(upload, "schools.csv", b"school_id,school_name\nSCH1,Lin\x81coln\n")

    checked = check_folder(upload, engine=engine)

    assert checked.codes() == [("fatal", "schools.csv", 2, None, "not_utf8")]


HEADER_ONLY = b"school_id,section_id,student_id\r\n"


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        pytest.param(
            "students.csv",
            b"school_id,student_id,first_name\nSCH1,S1,Ann\n",
            ("fatal", "students.csv", 1, "last_name", "missing_column"),
            id="required-column-missing",
        ),
        pytest.param(
            "students.csv",
            b"SCH1,S1,Ann,Lee,ann@x.org,ann,03\n",
            ("fatal", "students.csv", 1, None, "no_header"),
            id="no-header-row",
        ),
        pytest.param(
            "enrollments.csv",
            HEADER_ONLY,
            ("fatal", "enrollments.csv", None, None, "empty_file"),
            id="header-only",
        ),
        pytest.param(
            "enrollments.csv",
            b"",
            ("fatal", "enrollments.csv", None, None, "empty_file"),
            id="zero-bytes",
        ),
        pytest.param(
            "schools.csv",
            b"school_id,school_name,School_ID\nSCH1,L,SCH1\n",
            ("fatal", "schools.csv", 1, "School_ID", "duplicate_column"),
            id="duplicate-column",
        ),
        pytest.param(
            "schools.csv",
            b"school_id,school_name\nSCH1,L\x00\n",
            ("fatal", "schools.csv", None, None, "not_text"),
            id="nul-bytes",
        ),
        pytest.param(
            "schools.csv",
            "school_id,school_name\r\nSCH1,Lincoln\r\n".encode("utf-16"),
            ("fatal", "schools.csv", 1, None, "not_utf8"),
            id="excel-unicode-text-utf16",
        ),
        pytest.param(
            # The quote opened in the last column runs to the end of the file: the csv module
            # would silently make Washington part of Lincoln's name.
            "schools.csv",
            b'school_id,school_name\nSCH1,"Lincoln\nSCH2,Washington\nSCH3,Adams\n',
            ("fatal", "schools.csv", 2, None, "unbalanced_quote"),
            id="runaway-quote-to-end-of-file",
        ),
        pytest.param(
            "teachers.csv",
            b"school_id,teacher_id,first_name,last_name,teacher_email\n"
            b'SCH1,T1,Ada,"Lovelace,ada@d.org\n'
            + b"".join(b"SCH1,T%d,A,B,a%d@d.org\n" % (i, i) for i in range(2, 80))
            + b'SCH1,T99,Z,"Z",z@d.org\n',
            ("fatal", "teachers.csv", 2, None, "unbalanced_quote"),
            id="runaway-quote-over-many-lines",
        ),
        pytest.param(
            # Past 128 KiB the csv module gives up, thousands of lines after the quote.
            "teachers.csv",
            b"school_id,teacher_id,first_name,last_name,teacher_email\n"
            b"SCH1,T1,Ada,Lovelace,ada@d.org\n"
            b'SCH1,T2,"Alan,Turing,alan@d.org\n'
            + b"".join(b"SCH1,T%d,Ann,Lee,t%d@d.org\n" % (i, i) for i in range(3, 6000)),
            ("fatal", "teachers.csv", 3, None, "unbalanced_quote"),
            id="runaway-quote-past-the-field-limit",
        ),
    ],
)
def test_fatal_problems_fail_the_upload(
    engine: Engine, upload: Path, name: str, data: bytes, expected: tuple[object, ...]
) -> None:
    checked = check_folder(_replace(upload, name, data), engine=engine)

    assert checked.validation.fatal
    assert [c for c in checked.codes() if c[0] == "fatal"] == [expected]


def test_a_runaway_quote_says_which_lines_it_swallowed(engine: Engine, upload: Path) -> None:
    data = b'school_id,school_name\r\nSCH1,"Lincoln\r\nSCH2,Washington\r\nSCH3,Adams\r\n'

    checked = check_folder(_replace(upload, "schools.csv", data), engine=engine)

    assert checked.problems[0].message == (
        "a quoted value opened on line 2 never closes: it swallows lines 2-4, the end of the file"
    )


def test_a_missing_file_is_fatal_and_file_names_match_in_any_case(
    engine: Engine, upload: Path
) -> None:
    (upload / "sections.csv").unlink()
    (upload / "students.csv").rename(upload / "STUDENTS.CSV")
    (upload / "notes.txt").write_text("not part of the set")

    checked = check_folder(upload, engine=engine)

    assert checked.validation.fatal
    assert checked.codes() == [
        ("fatal", "sections.csv", None, None, "missing_file"),
        ("warning", None, None, None, "other_files"),
    ]
    assert checked.problems[1].message.endswith(": notes.txt")


def test_misshapen_rows_are_reported_in_line_order(engine: Engine, upload: Path) -> None:
    rows = b"".join(b"SCH1,S%d,A,B,s%d@x.org,,03\n" % (i, i) for i in range(1, 6))
    data = (
        b"school_id,student_id,first_name,last_name,student_email,username,grade\n"
        + rows
        + b"SCH1,S6,A,B,s6@x.org,,Z9\n"  # line 7: a bad grade
        + b"SCH1,S7,A,B\n"  # line 8: too few values
        + b"SCH1,S8,A,B,s8@x.org,,XX\n"  # line 9: a bad grade
    )

    checked = check_folder(_replace(upload, "students.csv", data), engine=engine)

    assert [c for c in checked.codes() if c[1] == "students.csv"] == [
        ("warning", "students.csv", 7, "grade", "bad_grade"),
        ("error", "students.csv", 8, None, "wrong_field_count"),
        ("warning", "students.csv", 9, "grade", "bad_grade"),
    ]


def test_extra_columns_can_be_ignored(engine: Engine) -> None:
    checked = check_folder(
        FIXTURES / "sis_export", TenantSettings(keep_extra_columns=False), engine=engine
    )

    assert {r[-1] for r in checked.fresh("students")} == {None}
    extra = [p.message for p in checked.problems if p.code == "extra_columns"]
    assert extra[0] == "extra columns ignored: principal"


@pytest.fixture
def upload(tmp_path: Path) -> Path:
    return write_upload(tmp_path / "upload", minimal_files())


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
@pytest.mark.parametrize("final_newline", [True, False], ids=["ended", "unended"])
def test_line_endings_do_not_change_records_or_line_numbers(
    engine: Engine, upload: Path, newline: str, final_newline: bool
) -> None:
    lines = [
        "school_id,student_id,first_name,last_name,student_email,username,grade",
        'SCH1,S1,"Line',
        'Break",Lee,ann@x.org,ann,03',
        "SCH1,S2,Bob,Kim,,bob,Z9",
        "SCH1,S3,Cy,Wu,,cy,05",
    ]
    text = newline.join(lines) + (newline if final_newline else "")
    _replace(upload, "students.csv", text.encode())

    checked = check_folder(upload, engine=engine)

    assert [c for c in checked.codes() if c[1] == "students.csv"] == [
        ("error", "students.csv", 2, "first_name", "line_break_in_value"),
        ("warning", "students.csv", 4, "grade", "bad_grade"),
    ]
    assert [r[:3] for r in checked.fresh("students")] == [
        ("SCH1", "S2", "Bob"),
        ("SCH1", "S3", "Cy"),
    ]
    assert [r[:2] for r in checked.held("students")] == [("SCH1", "S1")]


def test_a_file_mixing_utf8_and_windows_1252_fails_rather_than_garble(
    engine: Engine, upload: Path
) -> None:
    """Read as Windows-1252, the UTF-8 José on line 2 would become 'JosÃ©'."""
    data = (
        "school_id,student_id,first_name,last_name,student_email,username,grade\r\n"
        "SCH1,S1,José,Lee,,ann,03\r\n".encode()
        + "SCH1,S2,Renée,Kim,,bob,04\r\n".encode("cp1252")
    )

    checked = check_folder(_replace(upload, "students.csv", data), engine=engine)

    assert checked.codes() == [("fatal", "students.csv", 3, None, "not_utf8")]
    assert "mixes UTF-8" in checked.problems[0].message


def test_a_byte_order_mark_before_windows_1252_text_is_not_mixing(
    engine: Engine, upload: Path
) -> None:
    data = b"\xef\xbb\xbfschool_id,school_name\r\nSCH1,Lyc\xe9e Saint-Jean\r\n"

    checked = check_folder(_replace(upload, "schools.csv", data), engine=engine)

    assert checked.codes() == [("warning", "schools.csv", 2, None, "decoded_as_windows1252")]
    assert checked.fresh("schools") == [("SCH1", "Lycée Saint-Jean", None)]


SAMPLE_SCHOOLS = (
    "58da8a43cc70ab00017a1a87",
    "58da8a43cc70ab00017a1a88",
    "58da8a43cc70ab00017a1a89",
)


def test_a_full_clever_export_imports_whole(engine: Engine) -> None:
    """Shaped like Clever's own sample district: Clever's columns and grade spellings, M/D/YY
    terms, plain-text passwords, empty course names, a teacher listed under another school,
    CR-only line ends (schools.csv), lower-case alphabetical headers (teachers.csv), no final
    line break (enrollments.csv). Only the co-teacher who is in no file is an error."""
    checked = check_folder(SAMPLE, engine=engine)

    assert not checked.validation.fatal
    rows = {name: (f.rows, f.errors) for name, f in checked.validation.files.items()}
    assert rows == {
        "schools.csv": (3, 0),
        "teachers.csv": (5, 0),
        "students.csv": (14, 0),
        "sections.csv": (6, 1),
        "enrollments.csv": (34, 0),
    }
    assert {e: len(checked.fresh(e)) for e in checked.records} == SAMPLE_RECORDS
    assert all(not checked.held(e) for e in checked.records)
    [error] = [p for p in checked.problems if p.severity == "error"]
    assert (error.file, error.line, error.column, error.code) == (
        "sections.csv",
        6,
        "teacher_2_id",
        "unknown_teacher",
    )
    codes = {(p.file, p.code) for p in checked.problems if p.severity == "warning"}
    assert {
        ("students.csv", "secret_column"),
        ("teachers.csv", "secret_column"),
        ("students.csv", "bad_grade"),  # 8-Jun: Excel's date for a range; the value dropped
        ("sections.csv", "course_name_from_name"),
        ("sections.csv", "missing_course_name"),
        ("sections.csv", "teacher_other_school"),
        ("sections.csv", "repeated_teacher"),
        ("sections.csv", "date_normalised"),
    } <= codes
    secrets = [(p.file, p.column) for p in checked.problems if p.code == "secret_column"]
    assert secrets == [("students.csv", "Password"), ("teachers.csv", "password")]
    messages = {p.code: p.message for p in checked.problems}
    assert "turned a grade range into a date" in messages["bad_grade"]
    assert messages["teacher_other_school"] == (
        "teacher '58da8c6b894273be680001ff' is listed in teachers.csv under school"
        f" '{SAMPLE_SCHOOLS[1]}' (line 5), not '{SAMPLE_SCHOOLS[2]}': linked to this section"
        " all the same"
    )
    # Clever's grade spellings, each to its CEDS code.
    grades = [s[6] for s in checked.fresh("students")]
    assert grades == [
        *("KG", "01", "05", "PK", "IT", "TK", "PR", "PS", "UG", "Other", "12", "13", "PK"),
        "",  # 8-Jun: not imported
    ]
    assert checked.kept("students") == {(SAMPLE_SCHOOLS[1], "58da8c6a894273be6800010d"): ",grade,"}
    sections = {s[1][-3:]: s[3:6] for s in checked.fresh("sections")}
    year = (date(2015, 8, 1), date(2016, 6, 1))
    assert sections == {
        "300": ("Kindergarten - Greenholt", *year),  # course_name empty: the section's Name
        "301": ("Reading", *year),
        "302": ("Algebra I", date(2015, 8, 1), date(2015, 12, 18)),
        "303": (None, date(2016, 1, 4), date(2016, 6, 1)),  # no name at all: none imported
        "304": ("Science 7", *year),
        "305": ("Math 5", *year),
    }
    # The teacher listed under the middle school teaches the high school's Algebra I.
    links = {(s[1][-3:], s[2][-3:], s[3]) for s in checked.fresh("section_teachers")}
    assert ("302", "1ff", 2) in links
    assert not any(t == "999" for _, t, _ in links)  # the unknown co-teacher: no link
    assert ("304", "1fe", 1) in links  # …but the section keeps its teacher and its pupils
    # No password reaches a record, a problem or a kept column.
    stored = repr(checked.records) + repr(checked.problems)
    for password in PASSWORDS:
        assert password not in stored


def test_a_oneroster_file_is_named_as_such(engine: Engine, upload: Path) -> None:
    data = (
        b"sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role\r\n"
        b"e1,active,2026-08-01,c1,s1,u1,student\r\n"
    )

    checked = check_folder(_replace(upload, "enrollments.csv", data), engine=engine)

    assert checked.codes() == [("fatal", "enrollments.csv", 1, None, "other_format")]
    assert checked.problems[0].message == (
        "this is a OneRoster file (it has the columns sourcedId, classSourcedId,"
        " schoolSourcedId, userSourcedId), not a Clever one: set the SIS export to the Clever"
        " format (enrollments.csv needs school_id, section_id, student_id)"
    )


def test_optional_columns_missing_from_the_header_are_read_as_empty(
    engine: Engine, upload: Path
) -> None:
    (upload / "students.csv").write_text(
        "school_id,student_id,first_name,last_name,username\nSCH1,S1,Ann,Lee,ann\n"
    )
    (upload / "sections.csv").write_text(
        "school_id,section_id,teacher_id,name\nSCH1,SEC1,T1,Math 3 - Lovelace\n"
    )
    (upload / "enrollments.csv").write_text("school_id,section_id,student_id\nSCH1,SEC1,S1\n")

    checked = check_folder(upload, engine=engine)

    absent = {p.file: p.message for p in checked.problems if p.code == "absent_column"}
    assert absent == {
        "students.csv": "optional columns student_email, grade are not in the header: read as"
        " empty",
        "sections.csv": "optional columns course_name, term_start, term_end are not in the"
        " header: read as empty (each section's Name is used as its course name)",
    }
    assert checked.fresh("students") == [("SCH1", "S1", "Ann", "Lee", "", "ann", "", None)]
    assert [s[3] for s in checked.fresh("sections")] == ["Math 3 - Lovelace"]
    assert checked.validation.error_rows == 0


def test_a_dependent_row_names_the_root_cause(engine: Engine, upload: Path) -> None:
    (upload / "students.csv").write_text(
        "school_id,student_id,first_name,last_name,student_email,username,grade\n"
        "SCH1,S1,Ann,Lee,,ann,03\n"
        "SCH7,S2,Bob,Kim,,bob,04\n"  # moved to a school that is not in schools.csv
    )
    (upload / "schools.csv").write_text("school_id,school_name\nSCH1,Lincoln\nSCH2,Adams\n")
    (upload / "teachers.csv").write_text(
        "school_id,teacher_id,first_name,last_name,teacher_email\n"
        "SCH1,T1,Ada,Lovelace,ada@d.org\nSCH2,T2,Alan,Turing,alan@d.org\n"
    )
    (upload / "sections.csv").write_text(
        "school_id,section_id,teacher_id,course_name\nSCH1,SEC1,T1,Math\nSCH2,SEC2,T2,Art\n"
    )
    (upload / "enrollments.csv").write_text(
        "school_id,section_id,student_id\n"
        + "SCH1,SEC1,S2\n" * 1
        + "SCH1,SEC2,S1\n"  # SEC2 is a section of SCH2
    )

    checked = check_folder(upload, engine=engine)

    messages = [
        (p.file, p.line, p.code, p.message) for p in checked.problems if p.severity == "error"
    ]
    assert messages == [
        (
            "students.csv",
            3,
            "unknown_school",
            "school_id 'SCH7' is not in schools.csv, so this student is skipped",
        ),
        (
            "enrollments.csv",
            2,
            "parent_skipped",
            "student_id 'S2' was skipped in students.csv (line 3), so this enrollment is"
            " skipped too",
        ),
        (
            "enrollments.csv",
            3,
            "unknown_reference",
            "section_id 'SEC2' is not in sections.csv for school 'SCH1' (it is there under"
            " school 'SCH2', line 3), so this enrollment is skipped too",
        ),
    ]


def test_a_header_wider_than_any_roster_is_one_fatal_problem(engine: Engine, upload: Path) -> None:
    required = "school_id,school_name"
    widest = ",".join([required, *(f"c{n}" for n in range(MAX_COLUMNS - 2))])
    (upload / "schools.csv").write_text(f"{widest}\nSCH1,Lincoln{',' * (MAX_COLUMNS - 2)}\n")

    at_the_limit = check_folder(upload, engine=engine)

    assert not at_the_limit.validation.fatal
    [extra] = [p for p in at_the_limit.problems if p.code == "extra_columns"]
    assert len(extra.message) < MAX_MESSAGE_CHARS + 40
    assert extra.message.endswith("more characters)")  # cut, and says how much
    (upload / "schools.csv").write_text(f"{widest},one_more\nSCH1,Lincoln{',' * MAX_COLUMNS}\n")

    past_it = check_folder(upload, engine=engine)

    assert past_it.codes() == [("fatal", "schools.csv", 1, None, "too_many_columns")]


def test_a_header_repeating_names_is_one_fatal_problem(engine: Engine, upload: Path) -> None:
    header = ",".join(["school_id", "school_name", *(["x"] * 900), "y", "y"])
    (upload / "schools.csv").write_text(f"{header}\nSCH1,Lincoln\n")

    checked = check_folder(upload, engine=engine)

    assert checked.codes() == [("fatal", "schools.csv", 1, "x", "duplicate_column")]
    assert checked.problems[0].message == (
        "the header names columns more than once: 'x' (columns 3, 4, 5, … (900 times)),"
        " 'y' (columns 903 and 904)"
    )


def test_a_stray_quote_that_swallows_rows_is_an_error_naming_them(
    engine: Engine, upload: Path
) -> None:
    """The quote opened by mistake before Bob closes at "Smith, Jr." eight lines on: the csv
    module reads those lines as Bob's first name."""
    rows = [f"SCH1,S{n},Al{n},Lee,,al{n},05" for n in range(3, 10)]
    data = "\n".join(
        [
            "school_id,student_id,first_name,last_name,student_email,username,grade",
            "SCH1,S1,Ann,Lee,,ann,03",
            'SCH1,S2,"Bob,Kim,,bob,04',
            *rows,
            'SCH1,S10,Cy,"Smith, Jr.",,cy,05',
            "SCH1,S11,Dee,Ray,,dee,05",
            "",
        ]
    )
    (upload / "students.csv").write_text(data)

    checked = check_folder(upload, engine=engine)

    [problem] = [p for p in checked.problems if p.file == "students.csv"]
    assert (problem.severity.value, problem.line, problem.column, problem.code) == (
        "error",
        3,
        "first_name",
        "line_break_in_value",
    )
    assert problem.message.startswith("first_name runs over lines 3-11:")
    assert [r[1] for r in checked.fresh("students")] == ["S1", "S11"]
    assert [r[1] for r in checked.held("students")] == ["S2"]


@pytest.mark.parametrize(
    ("header", "row", "column"),
    [
        pytest.param("username", '"u2', "username", id="an-optional-clever-value"),
        pytest.param("notes", '"see the office', "notes", id="an-extra-column"),
        pytest.param("password", '"pw2', "password", id="a-secret-column"),
    ],
)
def test_a_stray_quote_in_any_column_is_an_error_that_quotes_no_other_row(
    engine: Engine, upload: Path, header: str, row: str, column: str
) -> None:
    """Whatever column the quote opens in, the rows it takes in are missing from the file:
    the import must pause, and the problem must not echo them (their passwords among them)."""
    lines = [
        f"school_id,student_id,first_name,last_name,student_email,grade,{header},password2",
        "SCH1,S1,Ann,Lee,ann@x.org,03,a1,Secr3t-S1",
        f"SCH1,S2,Bob,Kim,bob@x.org,04,{row},Secr3t-S2",
        "SCH1,S3,Cy,Wu,cy@x.org,05,c3,Secr3t-S3",
        'SCH1,S4,Dee,Ray,dee@x.org,05,end",Secr3t-S4',
        "SCH1,S5,Eve,Li,eve@x.org,06,e5,Secr3t-S5",
    ]
    (upload / "students.csv").write_text("\n".join(lines) + "\n")
    (upload / "enrollments.csv").write_text("school_id,section_id,student_id\nSCH1,SEC1,S1\n")

    checked = check_folder(upload, engine=engine)

    [problem] = [p for p in checked.problems if p.code == "line_break_in_value"]
    assert (problem.severity.value, problem.line, problem.column) == ("error", 3, column)
    assert problem.message.startswith(f"{column} runs over lines 3-5:")
    assert "Secr3t" not in repr(checked.problems) + repr(checked.records)
    assert checked.validation.error_rows == 1  # any error pauses the import by default


def test_a_teacher_number_past_any_position_is_an_extra_column(
    engine: Engine, upload: Path
) -> None:
    (upload / "sections.csv").write_text(
        "school_id,section_id,teacher_id,teacher_999_id,teacher_99999999999999999999_id,"
        "course_name\nSCH1,SEC1,T1,T2,T2,Math 3\n"
    )

    checked = check_folder(upload, engine=engine)

    assert not checked.validation.fatal
    links = {(r[2], r[3]) for r in checked.fresh("section_teachers")}
    assert links == {("T1", 1), ("T2", 999)}
    [extra] = [p.message for p in checked.problems if p.code == "extra_columns"]
    assert extra.endswith("teacher_99999999999999999999_id")


def test_a_teacher_listed_under_two_other_schools_is_linked_where_imported(
    engine: Engine, upload: Path
) -> None:
    (upload / "schools.csv").write_text("school_id,school_name\nA,Adams\nB,Brook\nSCH1,Lincoln\n")
    (upload / "teachers.csv").write_text(
        "school_id,teacher_id,first_name,last_name,teacher_email\n"
        "A,T9,Ada,Lee,no email\n"  # held at A
        "B,T9,Ada,Lee,ada@d.org\n"  # imported at B
        "SCH1,T1,Al,Kim,al@d.org\n"
    )
    (upload / "sections.csv").write_text(
        "school_id,section_id,teacher_id,teacher_2_id,course_name\nSCH1,SEC1,T1,T9,Math\n"
    )

    checked = check_folder(upload, engine=engine)

    assert ("SCH1", "SEC1", "T9", 2) in checked.fresh("section_teachers")
    [linked] = [
        p for p in checked.problems if p.file == "sections.csv" and p.column == "teacher_2_id"
    ]
    assert (linked.code, "under school 'B' (line 3)" in linked.message) == (
        "teacher_other_school",
        True,
    )
