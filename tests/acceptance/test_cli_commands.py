"""The `rosterdrop` command as an operator runs it: a subprocess, configured by environment.

Exit codes: validate 0/1; import 0 imported, 1 failed, 3 paused; 2 for usage and configuration
mistakes. Setup the command is not under test for is done in-process, to keep this quick.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from daemon.config import Settings
from daemon.store import imports
from daemon.store.database import Database
from daemon.store.tables import audit_log
from tests.support.clever import FIXTURES, minimal_files, write_upload
from tests.support.roster import (
    add_tenant,
    pipeline_for,
    roster,
    rosterdrop,
    rosterdrop_env,
    run_import,
    tables,
)

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
# Each command is a new process that takes a second to start: a few make a slow test.
pytestmark = pytest.mark.slow
PROBLEM_KEYS = {"severity", "code", "file", "line", "column", "value", "message"}
COUNT_KEYS = {"added", "updated", "deactivated", "unchanged", "errors"}
ENTITY_NAMES = {"schools", "teachers", "students", "sections", "section_teachers", "enrollments"}


def run(env: dict[str, str], *args: str, code: int = 0) -> str:
    """Run the command, check its exit code, return its standard output."""
    result = rosterdrop(env, *args)
    assert result.returncode == code, (result.stdout, result.stderr)
    return result.stdout


def run_json(env: dict[str, str], *args: str, code: int = 0) -> Any:
    return json.loads(run(env, *args, "--json", code=code))


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    return rosterdrop_env(settings)


def test_a_districts_first_import_from_tenant_add_to_roster_show(
    env: dict[str, str], db: Database
) -> None:
    added = run(env, "tenant", "add", "acme", "--email", "Admin@Acme.example.org")
    [password] = [line.split()[-1] for line in added.splitlines() if "password:" in line]
    assert len(password) >= 16
    assert "shown only now" in added
    shown = run_json(env, "tenant", "show", "acme")
    assert shown["emails"] == ["admin@acme.example.org"]
    assert shown["password_login"] is True
    assert password not in json.dumps(shown)

    dry = run_json(env, "import", str(FIXTURES / "sis_export"), "--tenant", "acme", "--dry-run")
    assert dry["ok"] is True
    assert dry["tenant"] == "acme"
    assert dry["counts"]["students"]["added"] == 5
    assert dry["tripped"] == []
    with db.read() as conn:
        assert imports.list_recent(conn) == []  # a dry run records nothing…
    assert all(rows == [] for rows in tables(db, "acme").values())  # …and changes nothing

    report = run_json(env, "import", str(FIXTURES / "sis_export"), "--tenant", "acme")
    assert {"id", "tenant", "state", "counts", "problems"} <= report.keys()
    assert (report["id"], report["tenant"], report["state"]) == (1, "acme", "imported")
    assert report["counts"].keys() == ENTITY_NAMES
    for counts in report["counts"].values():
        assert counts.keys() >= COUNT_KEYS
    assert report["counts"]["section_teachers"]["added"] == 11
    assert report["counts"]["enrollments"] == {
        **report["counts"]["enrollments"],
        "added": 6,
        "updated": 0,
        "deactivated": 0,
        "unchanged": 0,
        "errors": 0,
    }
    assert report["problem_totals"] == {"fatal": 0, "error": 0, "warning": 14}
    for problem in report["problems"]:
        assert problem.keys() == PROBLEM_KEYS
    assert run_json(env, "imports", "show", "1") == report

    shown_roster = run_json(env, "roster", "show", "--tenant", "acme")
    # Checked against the files and the import's own counts, not the function the command
    # itself calls: every record the import added is shown, and only those.
    assert {name: len(rows) for name, rows in shown_roster.items()} == {
        name: counts["added"] for name, counts in report["counts"].items()
    }
    assert {(s["school_id"], s["student_id"]) for s in shown_roster["students"]} == _keys(
        FIXTURES / "sis_export" / "students.csv", "school_id", "student_id"
    )
    sections = {s["section_id"]: s for s in shown_roster["sections"]}
    # The primary teacher first, then the others by last name, first name: Kim Abe before
    # Kim Jae, "de la Cruz" among the D's (not after every capital), Müller before O'Brien.
    assert sections["SEC1"]["teachers"] == ["T1", "T3", "T2"]
    assert sections["SEC2"]["teachers"] == ["T2", "T5", "T4", "T1"]
    assert sections["SEC3"]["teachers"] == ["T4", "T6", "T3"]
    assert sections["SEC1"]["course_name"] == 'Computer Science "AP"'
    assert sections["SEC1"]["term_end"] == "2027-06-10"
    assert sections["SEC1"]["extra"] == {"period": "1"}
    students = {(s["school_id"], s["student_id"]): s for s in shown_roster["students"]}
    assert students["SCH1", "S1"]["first_name"] == "Mary Ann"
    assert students["SCH1", "S1"]["grade"] == "KG"
    assert students["SCH2", "S4"]["email"] == "noel@x.org"
    assert students["SCH1", "S2"]["last_name"] == "Smith, Jr."
    readable = run(env, "roster", "show", "--tenant", "acme")
    assert "sections (4)" in readable


@sqlite_only
def test_paused_imports_are_approved_or_rejected(
    env: dict[str, str], db: Database, settings: Settings
) -> None:
    add_tenant(db, "acme")
    run_import(pipeline_for(db, settings), "acme", FIXTURES / "sis_export")
    broken = str(FIXTURES / "broken_rows")

    paused = run_json(env, "import", broken, "--tenant", "acme", code=3)
    assert paused["state"] == "paused"
    assert paused["tripped"][0] == {
        "rule": "row_errors", "entity": "all files", "count": 18, "total": 31, "percent": 58.06,
        "limit": 0, "message": "18 rows with errors of 31 read (58.1%; this district allows 0)",
    }  # fmt: skip
    assert {p["code"] for p in paused["problems"]} >= {"bad_email", "parent_skipped"}
    rejected = run_json(env, "imports", "reject", str(paused["id"]), "--by", "ops")
    assert (rejected["state"], rejected["decided_by"]) == ("rejected", "ops")

    again = run_json(env, "import", broken, "--tenant", "acme", code=3)
    approved = run_json(env, "imports", "approve", str(again["id"]), "--by", "ops")
    assert approved["state"] == "imported_with_errors"
    refused = rosterdrop(env, "imports", "approve", str(again["id"]))
    assert refused.returncode == 2
    assert "only a paused import can be approved" in refused.stderr

    listed = run_json(env, "imports", "list", "--tenant", "acme")
    assert [(i["id"], i["state"]) for i in listed] == [
        (3, "imported_with_errors"),
        (2, "rejected"),
        (1, "imported"),
    ]
    assert "rejected" in run(env, "imports", "list")
    with db.read() as conn:  # each decision is audited, as the web's are; a refused one not
        decisions = conn.execute(
            sa.select(
                audit_log.c.user_name, audit_log.c.action, audit_log.c.import_id,
                audit_log.c.detail, audit_log.c.address,
            ).order_by(audit_log.c.id)
        ).all()  # fmt: skip
    assert [tuple(d) for d in decisions] == [
        ("ops", "reject", paused["id"], "result: rejected", "cli"),
        ("ops", "approve", again["id"], "result: imported with errors", "cli"),
    ]


@sqlite_only
def test_validate_needs_no_database_and_exits_1_on_errors(
    env: dict[str, str], tmp_path: Path
) -> None:
    env = {**env, "ROSTERDROP_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/nowhere"}

    readable = run(env, "validate", str(FIXTURES / "sis_export"))
    assert "OK: the upload is valid" in readable
    assert "0 fatal, 0 errors, 14 warnings" in readable

    report = run_json(env, "validate", str(FIXTURES / "broken_rows"), code=1)
    assert report.keys() == {"ok", "files", "problem_totals", "problems", "problems_total"}
    assert report["ok"] is False
    assert report["problem_totals"] == {"fatal": 0, "error": 18, "warning": 5}
    assert report["problems_total"] == 23
    assert report["files"]["students.csv"] == {"rows": 7, "errors": 4, "warnings": 1}
    for problem in report["problems"]:
        assert problem.keys() == PROBLEM_KEYS
        assert problem["file"]
        assert problem["line"]
        if problem["severity"] == "error" and problem["code"] != "wrong_field_count":
            assert problem["column"], problem

    folder = shutil.copytree(FIXTURES / "sis_export", tmp_path / "no_sections")
    (folder / "sections.csv").unlink()
    failed = run(env, "validate", str(folder), code=1)
    assert "FAILED: the upload cannot be imported" in failed
    assert "sections.csv is missing" in failed


@sqlite_only
def test_a_failed_import_exits_1_and_names_the_problem(
    env: dict[str, str], db: Database, tmp_path: Path
) -> None:
    add_tenant(db, "acme")
    folder = write_upload(tmp_path / "upload", minimal_files())
    (folder / "students.csv").write_text("school_id,student_id,first_name\nSCH1,S1,Ann\n")

    report = run_json(env, "import", str(folder), "--tenant", "acme", code=1)

    assert report["state"] == "failed"
    assert report["fatal_reason"] == (
        "students.csv:1 column last_name: required column 'last_name' is missing from the header"
    )
    assert report["counts"] == {}


@sqlite_only
def test_tenant_settings_change_how_uploads_are_read(
    env: dict[str, str], db: Database, tmp_path: Path
) -> None:
    add_tenant(db, "acme")

    changed = json.loads(
        run(env, "tenant", "set", "acme", "--grade-rule", "K5=KG", "--max-row-errors", "3",
            "--threshold-floor", "2", "--fallback-encoding", "none",
            "--secret-columns", "Password, SSN")
    )  # fmt: skip
    assert changed["settings"] == {
        **changed["settings"],
        "grade_rules": {"K5": "KG"},
        "max_row_errors": 3,
        "threshold_floor": 2,
        "fallback_encoding": "",
        "secret_columns": ["password", "ssn"],
    }
    bad = rosterdrop(env, "tenant", "set", "acme", "--max-deactivate-percent", "150")
    assert bad.returncode == 2
    assert "max_deactivate_percent must be between 0 and 100" in bad.stderr
    bad_rule = rosterdrop(env, "tenant", "set", "acme", "--grade-rule", "K5")
    assert bad_rule.returncode == 2
    assert "--grade-rule wants FROM=TO" in bad_rule.stderr
    not_ceds = rosterdrop(env, "tenant", "set", "acme", "--grade-rule", "K4=K")
    assert not_ceds.returncode == 2
    assert "'K' is not a CEDS grade code" in not_ceds.stderr

    files = minimal_files()
    files["students.csv"][0][-1] = "K5"
    folder = write_upload(tmp_path / "upload", files)
    students = (folder / "students.csv").read_text().splitlines()
    (folder / "students.csv").write_text(
        "\n".join([students[0] + ",Student_SSN", *(f"{row},123-45-678{n}" for n, row in
                                                  enumerate(students[1:]))]) + "\n"
    )  # fmt: skip
    report = run_json(env, "import", str(folder), "--tenant", "acme")
    assert report["state"] == "imported"
    assert roster(db, "acme")["students"][0]["grade"] == "KG"
    assert [p["column"] for p in report["problems"] if p["code"] == "secret_column"] == [
        "Student_SSN"
    ]
    assert "123-45-678" not in json.dumps(roster(db, "acme"))

    latin = write_upload(tmp_path / "latin", minimal_files())
    (latin / "schools.csv").write_bytes(b"school_id,school_name\r\nSCH1,Lyc\xe9e\r\n")
    failed = run_json(env, "import", str(latin), "--tenant", "acme", code=1)
    assert failed["problems"][0]["code"] == "not_utf8"


@sqlite_only
def test_config_mistakes_exit_2_naming_what_is_wrong(env: dict[str, str], tmp_path: Path) -> None:
    secret_env = {
        **env,
        "ROSTERDROP_DATABASE_URL": "postgresql://rd:db-secret@db.internal/rosterdrop",
        "ROSTERDROP_SMTP_PASSWORD": "smtp-secret",
    }
    checked = run(secret_env, "config", "check")
    assert "db-secret" not in checked
    assert "smtp-secret" not in checked
    config = json.loads(checked)
    assert config["database_url"] == "postgresql://rd:********@db.internal/rosterdrop"
    assert config["smtp"]["password"] == "********"

    toml = tmp_path / "rosterdrop.toml"
    toml.write_text("[sftp]\nportt = 2222\n")
    unknown = rosterdrop(env, "--config", str(toml), "config", "check")
    assert unknown.returncode == 2
    assert "unknown setting sftp.portt" in unknown.stderr

    nobody = rosterdrop(env, "import", str(FIXTURES / "sis_export"), "--tenant", "nobody")
    assert nobody.returncode == 2
    assert "no tenant named 'nobody'" in nobody.stderr


def _keys(path: Path, *columns: str) -> set[tuple[str, ...]]:
    """The key columns of each row of a CSV file that has them (header names matched
    case-insensitively; the export's blank line has none)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = [{k.strip().lower(): v for k, v in row.items()} for row in csv.DictReader(handle)]
    return {tuple(row[c] for c in columns) for row in rows if all(row[c] for c in columns)}
