"""Rendering the three emails, read back with the stdlib parser as a mail client would."""

from __future__ import annotations

import csv
import dataclasses
import email
import io
import re
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from daemon.config import SmtpSettings
from daemon.notify import messages
from daemon.notify.messages import OutgoingEmail
from daemon.notify.problem_list import ATTACHMENT_LIMIT_BYTES
from daemon.roster.outcome import FileSummary, ImportReport, ImportState
from daemon.roster.plan import EntityChanges
from daemon.roster.problems import REPORT_COLUMNS, Problem, Severity
from daemon.roster.thresholds import TrippedThreshold

SMTP = SmtpSettings(from_address="rosterdrop@example.org")
RECEIVED = datetime(2024, 5, 2, 14, 3, tzinfo=UTC)
HOSTILE = "<script>alert(1)</script>"
INJECTION = "Evil\r\nBcc: x@evil.example"


def problem(line: int, value: str = "K5", message: str = "is not a CEDS grade") -> Problem:
    return Problem(Severity.ERROR, "bad_grade", message, "students.csv", line, "grade", value)


def write_report_csv(path: Path, problems: list[Problem]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(REPORT_COLUMNS)
        for p in problems:
            writer.writerow([p.severity, p.code, p.file, p.line, p.column, p.value, p.message])
    return path


def report(tmp_path: Path, **changes: object) -> ImportReport:
    problems = [problem(14, HOSTILE), problem(15, "Kinder", "is not a grade: try KG")]
    base = ImportReport(
        import_id=12,
        tenant="springfield",
        state=ImportState.IMPORTED_WITH_ERRORS,
        source="sftp",
        received_at=RECEIVED,
        started_at=RECEIVED + timedelta(seconds=5),
        finished_at=RECEIVED + timedelta(seconds=130),
        files=(
            FileSummary("schools.csv", 4),
            FileSummary("students.csv", 2000, errors=2),
            FileSummary("sections.csv", 80),
        ),
        entities={
            "schools": EntityChanges(active_before=4, unchanged=4),
            "students": EntityChanges(
                active_before=1000,
                added=20,
                updated=500,
                reactivated=1,
                deactivated=50,
                unchanged=1478,
                held=2,
            ),
            "sections": EntityChanges(active_before=80, unchanged=80),
            "section_teachers": EntityChanges(active_before=90, added=10, unchanged=90),
        },
        problems=tuple(problems),
        problem_totals={"fatal": 0, "error": 2, "warning": 0},
        report_csv=write_report_csv(tmp_path / "report.csv", problems),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def parse(outgoing: OutgoingEmail) -> EmailMessage:
    parsed = email.message_from_bytes(outgoing.message, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def bodies(message: EmailMessage) -> tuple[str, str]:
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None
    assert html is not None
    # Text parts are canonically CRLF on the wire; compare them as lines.
    return (
        plain.get_content().replace("\r\n", "\n"),
        html.get_content().replace("\r\n", "\n"),
    )


def attachment_rows(message: EmailMessage) -> list[list[str]]:
    (part,) = list(message.iter_attachments())
    assert part.get_content_type() == "text/csv"
    data = part.get_payload(decode=True)
    assert isinstance(data, bytes)
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_import_results_headers_parts_and_attachment(tmp_path: Path) -> None:
    outgoing = messages.import_results(report(tmp_path), ["admin@district.example"], SMTP)
    message = parse(outgoing)

    assert outgoing.kind == "import_results"
    assert outgoing.recipients == ("admin@district.example",)
    assert message["Subject"] == "Import Results: springfield import #12 — imported with errors"
    assert outgoing.subject == message["Subject"]
    assert message["From"] == "rosterdrop@example.org"
    assert message["To"] == "admin@district.example"
    assert message["Message-ID"].endswith("@example.org>")
    assert message["Date"] is not None
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/mixed"
    alternative = next(message.iter_parts())
    assert isinstance(alternative, EmailMessage)
    assert alternative.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in alternative.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    text, html = bodies(message)
    assert text.startswith("The import finished with errors.")
    assert "2 rows with errors were not imported whole" in text
    assert "Finished:  2024-05-02 14:05 UTC (took 2 min 5 s)" in text
    assert "students.csv:14:grade: error: is not a CEDS grade" in text
    assert "The complete list of problems is attached as import-12-problems.csv." in text
    assert "<table" in html
    assert "students.csv:15:grade" in html
    rows = attachment_rows(message)
    assert rows[0] == list(REPORT_COLUMNS)
    assert rows[1:] == [
        ["error", "bad_grade", "students.csv", "14", "grade", HOSTILE, "is not a CEDS grade"],
        ["error", "bad_grade", "students.csv", "15", "grade", "Kinder", "is not a grade: try KG"],
    ]  # fmt: skip
    part = next(message.iter_attachments())
    assert part.get_filename() == "import-12-problems.csv"


def test_percentages_of_rows_read_and_of_active_before(tmp_path: Path) -> None:
    text, html = bodies(parse(messages.import_results(report(tmp_path), ["a@x.example"], SMTP)))

    students = text.split("students.csv: 2,000 rows read", 1)[1].split("\n\n", 1)[0]
    assert re.search(r"added\s+20\s+1\.0%", students)
    assert re.search(r"reactivated\s+1\s+<0\.1%", students)
    assert re.search(r"updated\s+500\s+25\.0%", students)
    # Deactivated records are not in the file: their share is of those active before (50/1000).
    assert re.search(r"deactivated\s+50\s+5\.0%", students)
    assert re.search(r"unchanged\s+1,478\s+73\.9%", students)
    assert re.search(r"errors\s+2\s+0\.1%", students)
    links = text.split("sections.csv (section teacher assignments): 100 teacher links", 1)[1]
    assert re.search(r"added\s+10\s+10\.0%", links)
    assert "except Deactivated: of the records that were active before" in text
    assert "25.0%" in html
    assert "5.0%" in html


def test_hostile_values_are_escaped_in_html_and_plain_in_text(tmp_path: Path) -> None:
    hostile = report(tmp_path, tenant=f"spring{HOSTILE}")
    text, html = bodies(parse(messages.import_results(hostile, ["a@x.example"], SMTP)))

    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # Plain text is not HTML: the name reads as it is, not as &lt;…
    assert f'(value: "{HOSTILE}")' in text
    assert "&lt;" not in text


def test_crlf_in_tenant_value_and_address_injects_no_header_and_no_line(tmp_path: Path) -> None:
    evil = report(
        tmp_path,
        tenant=INJECTION,
        problems=(problem(3, value="x\r\nImport #13 approved", message="bad\nline"),),
    )
    outgoing = messages.import_results(
        evil, [INJECTION, "ok@district.example", "OK@District.example"], SMTP
    )
    message = parse(outgoing)
    raw_headers = outgoing.message.split(b"\r\n\r\n", 1)[0]

    assert message["Bcc"] is None
    assert not re.search(rb"^Bcc:", raw_headers, re.MULTILINE)
    assert "\n" not in message["Subject"]
    assert "\r" not in message["Subject"]
    assert message["X-Rosterdrop-Tenant"] == "Evil\ufffd\ufffdBcc: x@evil.example"
    assert outgoing.recipients == ("ok@district.example",)
    text, html = bodies(message)
    assert not any(line.startswith("Bcc:") for line in text.splitlines())
    assert not any(line.startswith("Import #13 approved") for line in text.splitlines())
    assert "x\ufffd\ufffdImport #13 approved" in text
    assert "bad\ufffdline" in text
    assert "bad\ufffdline" in html


def test_bidi_and_control_characters_are_neutralised(tmp_path: Path) -> None:
    spoof = report(tmp_path, problems=(problem(4, value="abc\u202etxt.exe\x1b[31m"),))
    text, html = bodies(parse(messages.import_results(spoof, ["a@x.example"], SMTP)))

    for body in (text, html):
        assert "\u202e" not in body
        assert "\x1b" not in body
        assert "abc\ufffdtxt.exe\ufffd[31m" in body


def test_failed_import_states_the_fatal_reason_first(tmp_path: Path) -> None:
    failed = report(
        tmp_path,
        state=ImportState.FAILED,
        entities={},
        fatal_reason="students.csv has no header row:\nthe first line is empty.",
        problems=(Problem(Severity.FATAL, "no_header", "no header row", "students.csv", 1),),
        problem_totals={"fatal": 1},
        report_csv=None,
    )
    outgoing = messages.import_results(failed, ["a@x.example"], SMTP)
    message = parse(outgoing)
    text, html = bodies(message)

    assert message["Subject"].endswith("— failed")
    assert text.splitlines()[0] == "students.csv has no header row: the first line is empty."
    assert text.splitlines()[1] == "Nothing in the roster was changed."
    first_paragraph = re.search(r"<p[^>]*>(.*?)</p>", html, re.DOTALL)
    assert first_paragraph is not None
    assert first_paragraph.group(1) == "students.csv has no header row: the first line is empty."
    # Without a plan there are no changes to show, only what was read.
    assert "reactivated" not in text
    assert "Reactivated" not in html
    assert "could not be attached: its file is not available" in text
    assert list(message.iter_attachments()) == []


@pytest.mark.parametrize(
    ("state", "changes", "headline"),
    [
        (ImportState.IMPORTED, {}, "The import finished and the roster is up to date."),
        (ImportState.REJECTED, {"decided_by": "jdoe"}, "jdoe rejected this import."),
        (
            ImportState.SUPERSEDED,
            {"superseded_by": 13},
            "A newer upload (import #13) replaced this one before it was applied.",
        ),
    ],
)
def test_each_ended_state_has_its_headline(
    tmp_path: Path, state: ImportState, changes: dict[str, object], headline: str
) -> None:
    ended = report(tmp_path, state=state, **changes)
    message = parse(messages.import_results(ended, ["a@x.example"], SMTP))
    text, _ = bodies(message)

    assert text.splitlines()[0] == headline
    assert message["Subject"].endswith(f"— {state.value}")
    planned_note = "Nothing was applied: these are the changes this upload would make."
    assert (planned_note in text) is (state is not ImportState.IMPORTED)


def skipped_student(line: int) -> Problem:
    return Problem(
        Severity.ERROR,
        "parent_skipped",
        "student_id 'S0000000' was skipped in students.csv (line 6), so this enrollment is too",
        "enrollments.csv",
        line,
        "student_id",
        "S0000000",
    )


def listed(text: str) -> list[str]:
    return [line for line in text.split("PROBLEMS:", 1)[1].splitlines() if line.startswith("- ")]


def test_repeated_problems_share_one_line_that_names_how_many_and_where(tmp_path: Path) -> None:
    grades = [problem(6, "K5"), problem(7, "Kinder", "is not a grade: try KG")]
    repeated = [skipped_student(n) for n in (10, 11, 14, 15, 16, 20, 21)]
    spread = [problem(n, value) for n, value in [(30, "X1"), (31, "X2"), (32, "X3"), (33, "X4")]]
    found = [*grades[:1], *repeated, grades[1], *spread]
    busy = report(
        tmp_path,
        problems=tuple(found),
        problem_totals={"error": len(found)},
        report_csv=write_report_csv(tmp_path / "busy.csv", found),
    )
    message = parse(messages.import_results(busy, ["a@x.example"], SMTP))
    text, html = bodies(message)

    assert listed(text) == [
        "- students.csv:grade: error: 5 rows, lines 6, 30, 31 and 2 more: is not a CEDS grade"
        ' (values: "K5", "X1", "X2" and 2 more)',
        "- enrollments.csv:student_id: error: 7 rows, lines 10, 11, 14 and 4 more: student_id"
        " 'S0000000' was skipped in students.csv (line 6), so this enrollment is too"
        ' (value: "S0000000")',
        '- students.csv:7:grade: error: is not a grade: try KG (value: "Kinder")',
    ]
    assert "Problems that repeat on several rows are shown once, with their lines." in text
    assert "Not shown here" not in text
    assert "<b>7 rows, lines 10, 11, 14 and 4 more</b>: student_id" in html
    assert "(values: &ldquo;K5&rdquo;, &ldquo;X1&rdquo;, &ldquo;X2&rdquo; and 2 more)" in html
    # The attached report keeps one row per problem.
    assert len(attachment_rows(message)) == 1 + len(found)


def test_the_first_twenty_lines_are_shown_and_the_rest_is_counted(tmp_path: Path) -> None:
    distinct = [problem(n, message=f"is not a CEDS grade ({n})") for n in range(2, 40)]
    found = [*distinct[:5], *(skipped_student(n) for n in range(100, 110)), *distinct[5:]]
    busy = report(
        tmp_path,
        problems=tuple(found),
        problem_totals={"error": len(found)},
        report_csv=write_report_csv(tmp_path / "many.csv", found),
    )
    message = parse(messages.import_results(busy, ["a@x.example"], SMTP))
    text, html = bodies(message)

    lines = listed(text)
    assert len(lines) == 20  # 5 single problems, the group of 10, then 14 single ones
    assert lines[5].startswith("- enrollments.csv:student_id: error: 10 rows, lines 100,")
    assert lines[-1].startswith("- students.csv:20:grade")
    # 48 problems: 5 + 10 + 14 shown, 19 not, each on a line of its own.
    assert "Not shown here: 19 more problems, in 19 more lines." in text
    assert "Not shown here: 19 more problems, in 19 more lines." in html
    assert len(attachment_rows(message)) == 49


def test_groups_of_a_cut_problem_list_say_what_they_were_counted_among(tmp_path: Path) -> None:
    kept = [skipped_student(n) for n in range(2, 1002)]
    busy = report(
        tmp_path,
        problems=tuple(kept),
        problem_totals={"error": 9784},
        report_csv=write_report_csv(tmp_path / "kept.csv", kept),
    )
    text, _ = bodies(parse(messages.import_results(busy, ["a@x.example"], SMTP)))

    assert listed(text)[0].startswith(
        "- enrollments.csv:student_id: error: 1,000 rows, lines 2, 3, 4 and 997 more:"
    )
    assert "They are counted among the first 1,000 of the 9,784 problems." in text
    assert "Not shown here: 8,784 more problems." in text


def test_huge_problem_list_is_cut_to_whole_rows_under_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    # A quoted line break in a value must not be where the cut splits a row.
    many = [problem(n, value=f"line one\nline two {n}", message="x" * 80) for n in range(70_000)]
    write_report_csv(path, many)
    assert path.stat().st_size > ATTACHMENT_LIMIT_BYTES
    huge = report(
        tmp_path, problems=tuple(many[:1000]), problem_totals={"error": 70_000}, report_csv=path
    )
    message = parse(messages.import_results(huge, ["a@x.example"], SMTP))
    text, _ = bodies(message)

    part = next(message.iter_attachments())
    data = part.get_payload(decode=True)
    assert isinstance(data, bytes)
    assert len(data) <= ATTACHMENT_LIMIT_BYTES
    rows = attachment_rows(message)
    kept = len(rows) - 1
    assert 10_000 < kept < 70_000
    assert all(len(row) == len(REPORT_COLUMNS) for row in rows)
    assert rows[-1][5] == f"line one\nline two {kept - 1}"
    assert f"holds only the first {kept:,} problems of 70,000" in text
    assert f"on the rosterdrop server at {path}" in text


def test_check_your_data_explains_thresholds_and_how_to_decide(tmp_path: Path) -> None:
    paused = report(
        tmp_path,
        state=ImportState.PAUSED,
        finished_at=None,
        tripped=(
            TrippedThreshold("deactivate", "students", 120, 1000, 10.0),
            TrippedThreshold("update", "students", 800, 1000, 75.0),
            TrippedThreshold("row_errors", "all files", 2, 2084, 0),
        ),
        entities={"students": EntityChanges(active_before=1000, field_changes={"email": 790})},
    )
    outgoing = messages.check_your_data(
        paused, ["a@x.example"], SMTP, review_url="https://rd.example/imports/12"
    )
    message = parse(outgoing)
    text, html = bodies(message)

    assert outgoing.kind == "check_your_data"
    assert message["Subject"] == "Check Your Data: springfield import #12 is paused"
    assert text.startswith("Import #12 for springfield is paused")
    assert "would deactivate 120 of 1,000 active students (12.0%, limit 10%)" in text
    assert "would change 800 of 1,000 active students (80.0%, limit 75%)" in text
    assert "2 rows with errors of 2,084 read (<0.1%; this district allows 0)" in text
    assert "(most changed: email 790)" in text
    assert "students.csv was not cut short" in text
    assert "    rosterdrop imports approve 12\n    rosterdrop imports reject 12\n" in text
    assert "Review it here: https://rd.example/imports/12" in text
    assert '<a href="https://rd.example/imports/12"' in html
    assert "120 of 1,000" in html
    assert "2 of 2,084 read" in html
    assert "0 rows allowed" in html
    assert "12.0%" in html
    assert "10%" in html
    assert "rosterdrop imports approve 12" in html
    assert "students.csv:14:grade" in text
    assert len(attachment_rows(message)) == 3


def test_incomplete_upload_lists_arrived_and_missing_files() -> None:
    since = datetime.now(UTC) - timedelta(hours=26)
    outgoing = messages.incomplete_upload(
        "springfield",
        ["schools.csv", f"students{HOSTILE}.csv"],
        ["teachers.csv", "sections.csv", "enrollments.csv"],
        since,
        ["a@x.example"],
        SMTP,
    )
    message = parse(outgoing)
    text, html = bodies(message)

    assert outgoing.kind == "incomplete_upload"
    assert message["Subject"] == "Incomplete upload: springfield — 3 files missing"
    assert "(26 h ago)" in text or "(25 h 59 min ago)" in text
    arrived = text.split("ARRIVED\n", 1)[1].split("\n\n", 1)[0]
    missing = text.split("MISSING\n", 1)[1].split("\n\n", 1)[0]
    assert arrived.splitlines() == ["- schools.csv", f"- students{HOSTILE}.csv"]
    assert missing.splitlines() == ["- teachers.csv", "- sections.csv", "- enrollments.csv"]
    assert "<script" not in html
    assert "students&lt;script&gt;" in html
    assert list(message.iter_attachments()) == []


def test_copy_address_joins_the_envelope_but_not_the_to_header(tmp_path: Path) -> None:
    smtp = SmtpSettings(copy_to=("ops@operator.example", "A@district.example"))
    outgoing = messages.import_results(report(tmp_path), ["a@district.example"], smtp)

    assert outgoing.recipients == ("a@district.example", "ops@operator.example")
    assert parse(outgoing)["To"] == "a@district.example"


def test_without_district_addresses_the_copy_is_the_reader(tmp_path: Path) -> None:
    smtp = SmtpSettings(copy_to=("ops@operator.example",))
    outgoing = messages.import_results(report(tmp_path), [], smtp)

    assert outgoing.recipients == ("ops@operator.example",)
    assert parse(outgoing)["To"] == "ops@operator.example"


def test_without_any_address_the_envelope_is_empty(tmp_path: Path) -> None:
    outgoing = messages.import_results(report(tmp_path), ["not an address"], SmtpSettings())

    assert outgoing.recipients == ()
    assert parse(outgoing)["To"] is None


def skipped_a_moved_student(tmp_path: Path, **changes: object) -> ImportReport:
    """Nine rows skipped: two students with a bad grade (held as they were) and one whose
    school is unknown, whom the plan deactivates with their six enrollments."""
    defaults: dict[str, object] = dict(
        files=(
            FileSummary("schools.csv", 4),
            FileSummary("students.csv", 2000, errors=3),
            FileSummary("sections.csv", 80),
            FileSummary("enrollments.csv", 4000, errors=6),
        ),
        entities={
            "schools": EntityChanges(active_before=4, unchanged=4),
            "students": EntityChanges(
                active_before=2000, deactivated=1, unchanged=1997, held=2, deactivated_skipped=1
            ),
            "sections": EntityChanges(active_before=80, unchanged=80),
            "enrollments": EntityChanges(
                active_before=4000, deactivated=6, unchanged=3994, deactivated_skipped=6
            ),
        },
        problem_totals={"error": 9},
    )
    return report(tmp_path, **(defaults | changes))


def test_import_results_say_which_records_were_held_and_which_deactivated(tmp_path: Path) -> None:
    text, html = bodies(
        parse(messages.import_results(skipped_a_moved_student(tmp_path), ["a@x.example"], SMTP))
    )

    detail = text.splitlines()[1]
    assert detail == (
        "9 rows with errors were not imported whole. 2 students were held: kept as they were."
        " 1 student and 6 enrollments were deactivated although the files still listed them:"
        " their rows were skipped. Everything else is in the roster."
    )
    assert "left as they are" not in text
    assert detail in html
    students = text.split("students.csv: 2,000 rows read", 1)[1].split("\n\n", 1)[0]
    assert re.search(r"held\s+2\s+0\.1%", students)
    assert re.search(r"deactivated\s+1\s+<0\.1%", students)
    assert ">Held</th>" in html


def test_check_your_data_says_what_skipping_the_rows_would_do(tmp_path: Path) -> None:
    paused = skipped_a_moved_student(
        tmp_path,
        state=ImportState.PAUSED,
        finished_at=None,
        tripped=(TrippedThreshold("row_errors", "all files", 9, 6084, 0),),
    )
    text, html = bodies(parse(messages.check_your_data(paused, ["a@x.example"], SMTP)))

    check = text.split("WHAT TO CHECK\n", 1)[1].split("\n", 1)[0]
    assert check == (
        "- 9 rows with errors would not be imported whole."
        " 2 students would be held: kept as they are."
        " 1 student and 6 enrollments would be deactivated although the files list them:"
        " their rows would be skipped. The first problems are listed below and all of them"
        " are in the attached CSV: fix them in the SIS and export again, or approve to import"
        " the rest now."
    )
    assert "left as they are" not in text
    assert "2 students would be held" in html


def test_a_count_of_zero_is_not_claimed_and_one_is_singular(tmp_path: Path) -> None:
    one = skipped_a_moved_student(
        tmp_path,
        files=(FileSummary("students.csv", 2000, errors=1),),
        entities={"students": EntityChanges(active_before=2000, unchanged=1999, held=1)},
        problem_totals={"error": 1},
    )
    text, _ = bodies(parse(messages.import_results(one, ["a@x.example"], SMTP)))

    assert text.splitlines()[1] == (
        "1 row with errors was not imported whole. 1 student was held: kept as it was."
        " Everything else is in the roster."
    )
    assert "deactivated although" not in text


def test_a_pause_for_another_reason_still_says_what_the_allowed_errors_do(tmp_path: Path) -> None:
    paused = skipped_a_moved_student(
        tmp_path,
        state=ImportState.PAUSED,
        finished_at=None,
        tripped=(TrippedThreshold("update", "students", 1600, 2000, 75.0),),
    )
    text, _ = bodies(parse(messages.check_your_data(paused, ["a@x.example"], SMTP)))

    checks = text.split("WHAT TO CHECK\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert len(checks) == 2
    assert checks[1].startswith(
        "- 9 rows with errors would not be imported whole. 2 students would be held"
    )


def test_every_count_is_written_one_way_and_every_noun_agrees(tmp_path: Path) -> None:
    """A large district's figures: each count has its thousands separator, none says row(s)."""
    repeated = [skipped_student(n) for n in range(10, 1210)]
    big = report(
        tmp_path,
        state=ImportState.PAUSED,
        finished_at=None,
        files=(
            FileSummary("schools.csv", 1),
            FileSummary("students.csv", 12_345, errors=1),
            FileSummary("sections.csv", 1_500),
            FileSummary("enrollments.csv", 48_000, errors=1_200),
        ),
        entities={
            "schools": EntityChanges(active_before=1, unchanged=1),
            "students": EntityChanges(
                active_before=12_000,
                added=1_344,
                deactivated=1_200,
                unchanged=11_000,
                held=1,
                deactivated_skipped=1,
            ),
            "sections": EntityChanges(active_before=1_500, unchanged=1_500),
            "section_teachers": EntityChanges(active_before=1, unchanged=1),
            "enrollments": EntityChanges(
                active_before=48_000,
                deactivated=1_200,
                unchanged=46_800,
                deactivated_skipped=1_200,
            ),
        },
        tripped=(
            TrippedThreshold("deactivate", "students", 1_200, 12_000, 5.0),
            TrippedThreshold("row_errors", "all files", 1_201, 61_846, 1_000),
        ),
        problems=tuple(repeated),
        problem_totals={"error": 1_201},
        report_csv=write_report_csv(tmp_path / "big.csv", repeated),
    )
    paused = bodies(parse(messages.check_your_data(big, ["a@x.example"], SMTP)))
    ended = bodies(
        parse(
            messages.import_results(
                dataclasses.replace(big, state=ImportState.IMPORTED_WITH_ERRORS),
                ["a@x.example"],
                SMTP,
            )
        )
    )

    for body in (*paused, *ended):
        # Four digits or more in a row, other than a year (2024-05-02): an unformatted count.
        assert re.findall(r"(?<![\w,.#-])\d{4,}(?![\d-])", body) == []
        assert "(s)" not in body
    text = paused[0]
    assert "schools.csv: 1 row read" in text
    assert "sections.csv (section teacher assignments): 1 teacher link" in text
    assert "would deactivate 1,200 of 12,000 active students (10.0%, limit 5%)" in text
    assert "1,201 rows with errors of 61,846 read (1.9%; this district allows 1,000)" in text
    assert (
        "1,200 of 12,000 active students would be deactivated: 1,199 are not in students.csv"
        " and 1 is in students.csv on a row skipped for an error. That usually means the export"
        " left something out: check that the SIS export selects every school and grade, and"
        " that students.csv was not cut short. That row is among the problems below: fixed in"
        " the SIS and exported again, it keeps its record."
    ) in text
    assert "1 student would be held: kept as it is." in text
    assert "1 student and 1,200 enrollments would be deactivated although" in text
    assert "1,200 rows, lines 10, 11, 12 and 1197 more" not in text
    assert "1,200 rows, lines 10, 11, 12 and 1,197 more" in text
    assert "Not shown here: 1 more problem." in text


def test_deactivations_all_on_skipped_rows_are_not_blamed_on_the_export(tmp_path: Path) -> None:
    paused = skipped_a_moved_student(
        tmp_path,
        state=ImportState.PAUSED,
        finished_at=None,
        tripped=(TrippedThreshold("deactivate", "enrollments", 6, 4000, 0.1),),
    )
    text, _ = bodies(parse(messages.check_your_data(paused, ["a@x.example"], SMTP)))

    assert (
        "- 6 of 4,000 active enrollments would be deactivated: 6 are in enrollments.csv on rows"
        " skipped for an error. Those rows are among the problems below: fixed in the SIS and"
        " exported again, they keep their records.\n"
    ) in text
    assert "left something out" not in text
    # 0.15% tripped a limit of 0.1%: it is not shown rounded down to the limit.
    assert "would deactivate 6 of 4,000 active enrollments (0.15%, limit 0.1%)" in text


def test_incomplete_upload_with_one_file_missing_speaks_of_one() -> None:
    since = datetime.now(UTC) - timedelta(hours=3)
    files = ["schools.csv", "students.csv", "teachers.csv", "sections.csv"]
    outgoing = messages.incomplete_upload(
        "springfield", files, ["enrollments.csv"], since, ["a@x.example"], SMTP
    )
    text, html = bodies(parse(outgoing))

    assert outgoing.subject == "Incomplete upload: springfield — 1 file missing"
    first, second = text.splitlines()[:2]
    assert first.startswith(
        "The upload folder of springfield holds only 4 of the 5 files of a roster upload,"
        " and nothing has arrived in it since "
    )
    assert second == (
        "rosterdrop imports only a complete set, so nothing of this upload has been imported"
        " yet. What has arrived stays in the folder: as soon as the missing file arrives, the"
        " whole set is imported."
    )
    assert "as soon as the missing file arrives" in html


def test_an_old_report_with_a_field_past_the_csv_limit_costs_the_list_not_the_email(
    tmp_path: Path,
) -> None:
    """Reports written before problems were bounded can hold a 700,000-name message."""
    report_csv = tmp_path / "problems.csv"
    report_csv.write_text(
        ",".join(REPORT_COLUMNS)
        + "\r\nerror,bad_grade,students.csv,2,grade,Z9,not a grade\r\n"
        + "warning,extra_columns,schools.csv,1,,,"
        + "x" * (csv.field_size_limit() + 10)
        + "\r\n"
    )
    old = report(tmp_path, report_csv=report_csv, problem_totals={"error": 1, "warning": 1})

    sent = messages.import_results(old, ["a@d.org"], SmtpSettings())

    [part] = list(email.message_from_bytes(sent.message, policy=policy.default).iter_attachments())
    rows = list(csv.reader(io.StringIO(part.get_content().lstrip("\ufeff"))))
    assert [r[1] for r in rows] == ["code", "bad_grade"]
