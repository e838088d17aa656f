"""A district's real Clever export, as its SIS sends it, through the operator's commands:
every class imported, and no password kept anywhere (`serve` over SFTP: test_serve_real_exports)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from daemon.config import Settings
from daemon.store.database import Database
from tests.support.roster import add_tenant, rosterdrop, rosterdrop_env
from tests.support.sample import (
    PASSWORDS,
    PROBLEM_TOTALS,
    RECORDS,
    SAMPLE,
    WARNINGS,
    counts,
    everything_stored,
)

pytestmark = pytest.mark.slow


def run_json(env: dict[str, str], *args: str, code: int = 0) -> Any:
    result = rosterdrop(env, *args, "--json")
    assert result.returncode == code, (result.stdout, result.stderr)
    for password in PASSWORDS:
        assert password not in result.stdout + result.stderr
    return json.loads(result.stdout)


def test_the_sample_district_imports_whole_through_the_commands(
    db: Database, settings: Settings
) -> None:
    env = rosterdrop_env(settings)
    add_tenant(db, "sandbox")

    # One real error (a co-teacher in no file) pauses the import, as any error does by default.
    paused = run_json(env, "import", str(SAMPLE), "--tenant", "sandbox", code=3)
    assert paused["state"] == "paused"
    assert paused["problem_totals"] == PROBLEM_TOTALS
    warnings = Counter(p["code"] for p in paused["problems"] if p["severity"] == "warning")
    assert warnings == WARNINGS
    assert paused["counts"]["sections"]["added"] == 6
    assert paused["counts"]["enrollments"]["added"] == 34
    approved = run_json(env, "imports", "approve", str(paused["id"]), "--by", "admin")
    assert approved["state"] == "imported_with_errors"

    roster = run_json(env, "roster", "show", "--tenant", "sandbox")
    assert counts(roster) == RECORDS
    grades = sorted(s["grade"] for s in roster["students"])
    assert grades == sorted(
        ["KG", "01", "05", "PK", "IT", "TK", "PR", "PS", "UG", "Other", "12", "13", "PK", ""]
    )
    terms = {(s["term_start"], s["term_end"]) for s in roster["sections"]}
    assert ("2015-08-01", "2016-06-01") in terms
    assert "password" not in json.dumps(roster).lower()
    rosterdrop(env, "outbox", "send")
    stored = everything_stored(db, settings.data_dir)
    assert "secret_column" in stored  # the report says the column was not kept…
    for password in PASSWORDS:
        assert password not in stored  # …and no value of it is anywhere
