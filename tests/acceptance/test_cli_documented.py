"""What docs/cli.md promises of the command, each seen working: `db upgrade`, `imports list
--state/--limit`, `validate --tenant`, `-v`, and the first 1,000 problems kept per import."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from daemon.config import Settings
from daemon.roster.outcome import ImportState
from daemon.roster.problems import KEEP_PROBLEMS
from daemon.roster.tenant import TenantSettings
from daemon.store.database import HEAD_REVISION, Database
from tests.support.clever import minimal_files, write_upload
from tests.support.roster import add_tenant, pipeline_for, rosterdrop, rosterdrop_env, run_import

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def schema_version(settings: Settings) -> str | None:
    database = Database(settings.database_url)
    try:
        return database.schema_version()
    finally:
        database.close()


@pytest.mark.empty_database
def test_db_upgrade_migrates_an_empty_database_and_can_run_again(settings: Settings) -> None:
    env = rosterdrop_env(settings)
    assert schema_version(settings) is None
    for _ in range(2):
        result = rosterdrop(env, "db", "upgrade")
        assert result.returncode == 0, result.stderr
        assert schema_version(settings) == HEAD_REVISION


def test_imports_list_by_state_and_limit(settings: Settings, db: Database, tmp_path: Path) -> None:
    add_tenant(db, "acme", TenantSettings(max_row_errors=0))
    pipeline = pipeline_for(db, settings)
    good = write_upload(tmp_path / "good", minimal_files())
    broken = minimal_files()
    broken["students.csv"][1][2] = ""  # no first name: any row error pauses
    imported = run_import(pipeline, "acme", good).import_id
    paused = run_import(pipeline, "acme", write_upload(tmp_path / "broken", broken)).import_id
    assert pipeline.report(paused).state is ImportState.PAUSED
    env = rosterdrop_env(settings)

    def listed(*args: str) -> list[int]:
        result = rosterdrop(env, "imports", "list", "--json", *args)
        assert result.returncode == 0, result.stderr
        return [row["id"] for row in json.loads(result.stdout)]

    assert listed() == [paused, imported]
    assert listed("--state", "paused") == [paused]
    assert listed("--state", "imported") == [imported]
    assert listed("--limit", "1") == [paused], "the newest"


def test_validate_with_a_tenant_uses_its_grade_rules(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    add_tenant(db, "acme", TenantSettings(grade_rules={"K5": "KG"}))
    files = minimal_files()
    files["students.csv"][0][6] = "K5"
    folder = write_upload(tmp_path / "upload", files)
    env = rosterdrop_env(settings)

    plain = rosterdrop(env, "validate", str(folder), "--json")
    assert plain.returncode == 0, plain.stdout  # a bad grade costs only the value: a warning
    assert "bad_grade" in [p["code"] for p in json.loads(plain.stdout)["problems"]]

    ruled = rosterdrop(env, "validate", str(folder), "--tenant", "acme", "--json")
    assert ruled.returncode == 0, ruled.stdout
    codes = [p["code"] for p in json.loads(ruled.stdout)["problems"]]
    assert "bad_grade" not in codes
    assert "grade_replaced" in codes


def test_verbose_logs_to_stderr_and_quiet_does_not(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    add_tenant(db, "acme")
    env = rosterdrop_env(settings)
    first, second = (write_upload(tmp_path / name, minimal_files()) for name in ("a", "b"))
    quiet = rosterdrop(env, "import", str(first), "--tenant", "acme")
    assert (quiet.returncode, quiet.stderr) == (0, "")
    verbose = rosterdrop(env, "-v", "import", str(second), "--tenant", "acme")
    assert verbose.returncode == 0
    assert "upload claimed" in verbose.stderr, "-v logs what happens"
    assert "upload claimed" not in verbose.stdout, "to stderr"


def test_an_import_keeps_its_first_1000_problems_and_reports_them_all(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    add_tenant(db, "acme", TenantSettings(max_row_errors=10_000))
    files = minimal_files()
    bad = KEEP_PROBLEMS + 200
    # Every row but the first names a school the district does not have: skipped, reported.
    files["students.csv"][1:] = [
        ["NOPE", f"S{n}", "Ann", "Lee", "", f"u{n}", "03"] for n in range(100, 100 + bad)
    ]
    files["enrollments.csv"] = files["enrollments.csv"][:1]
    pipeline = pipeline_for(db, settings)

    report = run_import(pipeline, "acme", write_upload(tmp_path / "upload", files))

    assert report.state is ImportState.IMPORTED_WITH_ERRORS, report.problems[:3]
    assert len(report.problems) == KEEP_PROBLEMS
    assert {p.code for p in report.problems} == {"unknown_school"}
    assert report.problem_totals["error"] == bad
    assert report.report_csv is not None
    with report.report_csv.open(encoding="utf-8-sig", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["code"] == "unknown_school"]
    assert len(rows) == bad, "the report file has every problem"
    shown = rosterdrop(rosterdrop_env(settings), "imports", "show", str(report.import_id), "--json")
    assert len(json.loads(shown.stdout)["problems"]) == KEEP_PROBLEMS
