"""PostgreSQL goes away under a running daemon, for real (pg_ctl stop), and comes back.

Meanwhile an import is stopped in its transaction, just before the commit (a test-only
stopping point, daemon/testpoint.py), and a second upload is waiting to be claimed. The
import's commit fails and its process exits to be run again; the claim fails and the files
stay in /upload; the mailer cannot read the outbox; /readyz says the database is down.
When the server is back, both imports run, in order, and each email goes out once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.testpoint import STOP_AT
from tests.support import postgres
from tests.support.drop import District, roster_ids
from tests.support.process import metric, wait_until
from tests.support.site import Site, upload

POINT = "apply-before-commit"


@pytest.mark.postgres
def test_a_database_outage_loses_nothing_and_everything_resumes(
    make_site: Callable[..., Site], own_postgres: postgres.Server, tmp_path: Path
) -> None:
    stops = tmp_path / "stops"
    stops.mkdir()
    site = make_site(
        ROSTERDROP_DATABASE_URL=postgres.create_database(own_postgres.url, "outage"),
        ROSTERDROP_SETTLE_SECONDS="1",
        **{STOP_AT: f"{POINT}:{stops}"},
    )
    site.add_tenant("acme", "admin@acme.example.org")
    monday, tuesday = District("acme", students=10), District("acme", students=14)
    with site.daemon() as daemon:
        daemon.ready()
        upload(daemon.sftp_port, "acme", monday.files())
        wait_until((stops / f"{POINT}.reached").exists, 30, "Monday's import to reach its commit")
        upload(daemon.sftp_port, "acme", tuesday.files())
        site.close()  # the test's own connections would be cut as well

        own_postgres.stop()
        (stops / f"{POINT}.go").touch()  # Monday's import commits into the outage
        retried = daemon.wait_for("import process ended abnormally; it runs again", import_id=1)
        assert retried["exitcode"] == 1
        assert daemon.wait_for("import process failed", import_id=1)["error"].startswith(
            "database error"
        )
        daemon.wait_for("could not claim an upload", tenant="acme")
        daemon.wait_for("notify.sender_store_error")
        upload_dir = site.settings.paths.upload_dir("acme")
        assert sorted(p.name for p in upload_dir.iterdir()) == sorted(tuesday.files())
        # No scrape came before the outage: the import counts are not made up meanwhile (a 0
        # followed by the whole history would read as a counter reset).
        from_database = ("rosterdrop_imports_total", "rosterdrop_imports_paused")
        assert not [k for k in daemon.metrics() if k[0] in from_database]
        status, body = daemon.get("/readyz")
        checks = json.loads(body)["checks"]
        # cluster_lease too (a node of one): true until the lease runs out without a heartbeat.
        assert (status, checks["sftp"], checks["database"]) == (503, True, False)
        own_postgres.start()

        wait_until(lambda: daemon.get("/readyz")[0] == 200, 30, "/readyz to recover")
        wait_until(lambda: _ended(site) == ["imported", "imported"], 60, "both imports to end")
        assert list(upload_dir.iterdir()) == []
        assert metric(daemon.metrics(), "rosterdrop_imports_total", state="imported") == 2
        students = roster_ids(site.roster("acme"), "students", "student_id")
        assert students == set(tuesday.student_ids())
        wait_until(
            lambda: [e["state"] for e in site.emails("import_results")] == ["sent", "sent"],
            30,
            "each import's email, sent once",
        )
        assert daemon.stop() == 0
    assert [(r["id"], r["attempts"]) for r in site.imports("acme")] == [(1, 2), (2, 1)]


def _ended(site: Site) -> list[str]:
    return [r["state"] for r in site.imports("acme") if r["finished_at"] is not None]
