"""A check's answer in /check/results: whole files only, and only the newest checks kept."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from daemon.check import results
from daemon.check.desk import is_check_path
from daemon.check.report import as_json, as_text
from daemon.config import SpoolSettings
from daemon.config.settings import MAX_CHECK_RESULTS_KEPT
from daemon.dryrun import DryRun
from daemon.errors import ConfigError
from daemon.roster.outcome import FileSummary
from daemon.roster.problems import Problem, Severity

RECEIVED = datetime(2026, 12, 1, 14, 30, 5, tzinfo=UTC)


def dry_run(problems: tuple[Problem, ...] = ()) -> DryRun:
    totals = {"fatal": 0, "error": len(problems), "warning": 0}
    return DryRun((FileSummary("schools.csv", 2),), {}, (), problems, totals)


def write_check(folder: Path, check_id: int, keep: int, csv: Path) -> str:
    name = results.results_name(check_id, RECEIVED)
    answer = as_json(check_id, "acme", RECEIVED, name, dry_run())
    results.write(folder, name, answer, csv, keep)
    return name


def test_the_newest_checks_are_kept_at_the_bound(tmp_path: Path) -> None:
    csv = tmp_path / "problems.csv"
    csv.write_text("severity,code\n")
    folder = tmp_path / "results"
    names = [write_check(folder, check_id, 2, csv) for check_id in (9, 10)]
    assert len(list(folder.iterdir())) == 6  # at the bound: nothing removed
    (folder / "notes.txt").write_text("the district's own")  # not a result: never removed
    newest = write_check(folder, 11, 2, csv)
    left = sorted(p.name for p in folder.iterdir())
    assert not any(n.startswith(names[0]) for n in left)  # check 9 (10 sorts after it)
    assert sum(n.startswith(names[1]) for n in left) == 3
    assert sum(n.startswith(newest) for n in left) == 3
    assert "notes.txt" in left
    assert not any(n.startswith(".") for n in left)  # no temporary file left behind


def test_a_removed_result_is_not_written_again(tmp_path: Path) -> None:
    csv = tmp_path / "problems.csv"
    csv.write_text("severity,code\n")
    folder = tmp_path / "results"
    first = write_check(folder, 1, 5, csv)
    (folder / f"{first}-problems.csv").unlink()  # the client fetched and deleted it
    write_check(folder, 2, 5, csv)
    assert not (folder / f"{first}-problems.csv").exists()
    assert (folder / f"{first}-report.txt").exists()


def test_the_readable_report_keeps_untrusted_values_on_one_line() -> None:
    bad = Problem(Severity.ERROR, "bad_grade", "not a grade", "students.csv", 3, "grade", "A\nB")
    text = as_text(as_json(1, "acme", RECEIVED, "n", dry_run((bad,))))
    [line] = [ln for ln in text.splitlines() if "bad_grade" in ln or "not a grade" in ln]
    assert "students.csv:3:grade" in line
    assert "A\ufffdB" in line


@pytest.mark.parametrize("kept", [0, MAX_CHECK_RESULTS_KEPT + 1])
def test_the_results_bound_is_checked(kept: int) -> None:
    with pytest.raises(ConfigError, match="check_results_kept"):
        SpoolSettings(check_results_kept=kept)


@pytest.mark.parametrize("kept", [1, MAX_CHECK_RESULTS_KEPT])
def test_the_results_bound_edges_are_allowed(kept: int) -> None:
    assert SpoolSettings(check_results_kept=kept).check_results_kept == kept


@pytest.mark.parametrize(
    ("path", "inside"),
    [
        ("/data/tenants/acme/check/students.csv", True),
        ("/data/tenants/acme/check/results/x-report.txt", True),
        ("/data/tenants/acme/upload/students.csv", False),
        ("/data/tenants/check/upload/students.csv", False),  # a tenant named "check"
        ("/data/tenants/results/upload/students.csv", False),
    ],
)
def test_events_are_routed_to_the_check_desk_by_folder(path: str, inside: bool) -> None:
    assert is_check_path(Path(path)) is inside
