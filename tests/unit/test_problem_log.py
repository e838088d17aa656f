"""The problem log: exact counts, a bounded memory, bounded problems, and a report that an
identical re-upload repeats whole."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from daemon.roster.problems import MAX_MESSAGE_CHARS, MAX_VALUE_CHARS, ProblemLog, clip


def test_every_kind_of_problem_is_capped_but_counted_exactly() -> None:
    log = ProblemLog(keep=5)
    for n in range(5):
        log.warning("extra_columns", f"warning {n}", file="schools.csv", line=1)
    for n in range(1000):  # a header of a thousand repeated names, say
        log.fatal("duplicate_column", f"fatal {n}", file="schools.csv", line=1)

    assert log.totals() == {"fatal": 1000, "error": 0, "warning": 5}
    # The first fatal problem explains why the import failed: it is kept past the cap.
    assert [p.message for p in log.kept] == [*(f"warning {n}" for n in range(5)), "fatal 0"]


def test_a_problem_never_holds_more_than_its_bounds_and_says_what_was_cut() -> None:
    out = io.StringIO()
    log = ProblemLog(out)
    log.warning("extra_columns", "x" * 700_000, file="schools.csv", line=1, value="v" * 5000)

    [problem] = log.kept
    assert (
        problem.message
        == "x" * MAX_MESSAGE_CHARS + f"… ({700_000 - MAX_MESSAGE_CHARS:,} more characters)"
    )
    assert problem.value == clip("v" * 5000, MAX_VALUE_CHARS)
    # The report's default csv field limit (128 KiB) reads every row it wrote.
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[1][-1] == problem.message


def test_repeating_an_earlier_report_copies_it_whole(tmp_path: Path) -> None:
    earlier = tmp_path / "problems.csv"
    with earlier.open("w", encoding="utf-8", newline="") as handle:
        first = ProblemLog(handle, keep=2)
        for n in range(4):
            first.error(
                "bad_email", f"multi-line {n}", file="teachers.csv", line=n + 2, value="x\ny"
            )
        first.warning("identical_upload", "the same five files as import #1")
    out = io.StringIO()

    again = ProblemLog(out, keep=2)
    again.repeat(first.kept, first.totals(), earlier)

    assert again.totals() == {"fatal": 0, "error": 4, "warning": 0}  # its note left out
    assert [p.code for p in again.kept] == ["bad_email", "bad_email"]
    with earlier.open(encoding="utf-8", newline="") as handle:
        written = handle.read()
    # the header and every row, quoted line breaks and all, without the repeated note
    assert out.getvalue() == written[: written.rindex("warning,identical_upload")]
    gone = ProblemLog(io.StringIO(), keep=2)
    gone.repeat(first.kept, first.totals(), tmp_path / "expired.csv")
    assert gone.totals()["error"] == 4  # exact even when the archive has expired
