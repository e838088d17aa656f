"""An operator ends an import that no retry finishes: `rosterdrop imports fail ID` fails it with
nothing applied, the district gets its Import Results, the files go to the archive like any
ended import's, and the district's next upload imports."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from daemon import folders
from daemon.clever.files import find_files
from daemon.config import Settings
from daemon.pipeline import MAX_ATTEMPTS
from daemon.roster.outcome import ImportState
from daemon.store import imports, tenants
from daemon.store.database import Database
from daemon.store.tables import audit_log
from tests.support.clever import minimal_files, write_upload
from tests.support.drop import emails, import_rows
from tests.support.roster import add_tenant, pipeline_for, roster, rosterdrop, rosterdrop_env

pytestmark = pytest.mark.slow


def crash_looping_import(db: Database, settings: Settings, tmp_path: Path) -> int:
    """What an upload whose import process dies on every attempt leaves: the import claimed,
    `validating`, its attempts used up, and the last attempt's half-written problem report,
    holding a field longer than a CSV reader accepts (what killed the email builder)."""
    pipeline = pipeline_for(db, settings)
    with db.read() as conn:
        owner = tenants.get(conn, "acme")
    upload = write_upload(tmp_path / "upload", minimal_files())
    import_id = pipeline.receive(owner, find_files(upload), source="sftp", move=False)
    with db.write() as conn:
        record = imports.get(conn, import_id)
        imports.update(
            conn,
            import_id,
            record.received_at,
            state=ImportState.VALIDATING,
            started_at=record.received_at,
            attempts=MAX_ATTEMPTS,
        )
    # Longer than the email's attachment (5 MiB: so it is parsed to be cut) and than the CSV
    # reader's field limit (so parsing it raises).
    poison = "x" * max(6 << 20, csv.field_size_limit() + 1)
    (Path(record.files_dir or "") / folders.PROBLEMS).write_text(
        f"severity,code,file,line,column,value,message\r\nwarning,extra_column,students.csv,1,,,{poison}"
    )
    return import_id


def test_an_operator_fails_an_import_stuck_in_validating(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    env = rosterdrop_env(settings)
    add_tenant(db, "acme")
    stuck = crash_looping_import(db, settings, tmp_path)

    refused = rosterdrop(env, "imports", "reject", str(stuck))
    assert refused.returncode == 2
    assert f"imports fail {stuck}" in refused.stderr  # reject says what to use instead

    ended = rosterdrop(env, "imports", "fail", str(stuck), "--by", "ops@example.org", "--json")
    assert ended.returncode == 0, ended.stderr
    report = json.loads(ended.stdout)
    assert report["state"] == "failed"
    [problem] = report["problems"]
    assert problem["code"] == "ended_by_operator"
    assert "ops@example.org ended the import" in problem["message"]

    [row] = import_rows(db, "acme")
    assert (row["state"], row["decided_by"]) == ("failed", "ops@example.org")
    assert row["archived_at"] is not None
    archived = Path(row["files_dir"])
    assert archived.is_relative_to(settings.paths.archive)
    assert {"students.csv", folders.PROBLEMS} <= {p.name for p in archived.iterdir()}
    assert [e["kind"] for e in emails(db) if e["import_id"] == stuck] == ["import_results"]
    with db.read() as conn:
        audited = conn.execute(
            sa.select(audit_log.c.user_name, audit_log.c.action, audit_log.c.detail)
        ).all()
    assert [tuple(a) for a in audited] == [
        ("ops@example.org", "fail", "result: failed; reason: stuck")
    ]
    sent = rosterdrop(env, "outbox", "send")  # it goes out: the report attached is sound
    assert sent.returncode == 0, sent.stderr
    assert [e["state"] for e in emails(db) if e["import_id"] == stuck] == ["sent"]
    assert roster(db, "acme")["students"] == []  # nothing was applied

    again = rosterdrop(env, "imports", "fail", str(stuck))
    assert again.returncode == 2
    assert "already ended" in again.stderr

    # The district's next upload is not blocked by the one that was stuck.
    upload = write_upload(tmp_path / "next", minimal_files())
    imported = rosterdrop(env, "import", str(upload), "--tenant", "acme")
    assert imported.returncode == 0, imported.stderr


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_fail_refuses_an_import_that_is_running(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    tenant = add_tenant(db, "acme")
    stuck = crash_looping_import(db, settings, tmp_path)
    with db.tenant_lock(tenant.id):  # an import process of acme is at work
        result = rosterdrop(rosterdrop_env(settings), "imports", "fail", str(stuck))
    assert result.returncode == 2
    assert "running right now" in result.stderr
    assert import_rows(db, "acme")[0]["state"] == "validating"
