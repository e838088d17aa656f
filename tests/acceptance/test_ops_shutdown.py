"""SIGTERM while an import is applying: it finishes within the shutdown timeout, or it is
stopped with nothing applied and completed, once, after the next start.

To catch an import in the middle of its transaction, the test holds PostgreSQL's SHARE lock on
the enrollments table: the import validates, plans and writes schools, teachers, students and
sections, then waits on its first write to enrollments, the last table it applies.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator

import psycopg
import pytest

from tests.support.drop import District, roster_ids
from tests.support.process import Daemon, wait_until
from tests.support.site import Site, upload

pytestmark = pytest.mark.postgres
RESUMABLE = ("received", "validating", "approved", "importing")


def _conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@contextlib.contextmanager
def enrollments_locked(url: str) -> Iterator[psycopg.Connection]:
    """Writers to enrollments wait until the block ends; readers go on."""
    with psycopg.connect(_conninfo(url)) as conn:
        conn.execute("LOCK TABLE enrollments IN SHARE MODE")
        yield conn
        conn.rollback()


def _sessions(url: str, where: str) -> int:
    """How many other sessions of the test database match `where` (pg_stat_activity)."""
    with psycopg.connect(_conninfo(url), autocommit=True) as conn:
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        row = conn.execute(f"{query} AND pid <> pg_backend_pid() AND {where}").fetchone()
        return int(row[0]) if row else 0


def _blocked(url: str) -> bool:
    return _sessions(url, "wait_event_type = 'Lock'") > 0


def _no_transaction(url: str) -> bool:
    return _sessions(url, "xact_start IS NOT NULL") == 0


BEFORE, AFTER = District("acme", students=20), District("acme", students=24)


def _site(make_site: Callable[..., Site], url: str, shutdown_timeout: float) -> Site:
    site = make_site(
        ROSTERDROP_DATABASE_URL=url, ROSTERDROP_SERVICE_SHUTDOWN_TIMEOUT=str(shutdown_timeout)
    )
    site.add_tenant("acme", "admin@acme.example.org")
    return site


@contextlib.contextmanager
def second_import_blocked(site: Site, daemon: Daemon, url: str) -> Iterator[None]:
    """The first upload imported, the second one's transaction waiting on enrollments."""
    daemon.ready()
    upload(daemon.sftp_port, "acme", BEFORE.files())
    wait_until(
        lambda: [r for r in site.imports("acme") if r["state"] == "imported"], 30, "an import"
    )
    with enrollments_locked(url):
        upload(daemon.sftp_port, "acme", AFTER.files())
        wait_until(lambda: _blocked(url), 30, "the import to block")
        yield


def test_sigterm_stops_an_unfinished_import_which_resumes_and_completes_once(
    make_site: Callable[..., Site], postgres_url: str
) -> None:
    site = _site(make_site, postgres_url, shutdown_timeout=1)
    with site.daemon("first") as daemon:
        with second_import_blocked(site, daemon, postgres_url):
            assert daemon.stop(signal.SIGTERM) == 0
        daemon.wait_for("stopping an unfinished import; it resumes at the next start")

    # The stopped import's transaction is gone: the roster is the first upload's, whole.
    wait_until(lambda: _no_transaction(postgres_url), 30, "the import's transaction to end")
    roster = site.roster("acme")
    assert roster_ids(roster, "students", "student_id") == set(BEFORE.student_ids())
    assert len(roster["enrollments"]) == 2 * 20
    first, second = site.imports("acme")
    assert second["state"] in RESUMABLE
    assert second["attempts"] == 1
    assert [e["import_id"] for e in site.emails("import_results")] == [first["id"]]

    with site.daemon("second") as daemon:
        daemon.ready()
        wait_until(
            lambda: site.imports("acme")[-1]["state"] == "imported", 30, "the resumed import"
        )
        assert daemon.stop() == 0

    imports = site.imports("acme")
    assert [(r["id"], r["state"]) for r in imports] == [
        (first["id"], "imported"),
        (second["id"], "imported"),
    ]
    assert imports[1]["attempts"] == 2
    assert roster_ids(site.roster("acme"), "students", "student_id") == set(AFTER.student_ids())
    results = [e["import_id"] for e in site.emails("import_results")]
    assert results == [first["id"], second["id"]], "one Import Results email per import"


def test_ctrl_c_lets_the_running_import_finish_within_the_timeout(
    make_site: Callable[..., Site], postgres_url: str
) -> None:
    """SIGINT to the whole process group, as in a terminal: the import process must not die
    of it, but finish while the daemon waits for it (SIGTERM, as systemd sends it, goes to
    the daemon alone and takes the same path)."""
    site = _site(make_site, postgres_url, shutdown_timeout=20)
    with site.daemon() as daemon:
        with second_import_blocked(site, daemon, postgres_url):
            daemon.interrupt()
            daemon.wait_for("rosterdrop is stopping", running_imports=1)
            # New logins are refused while the import is given its time.
            daemon.wait_for("sftp.stopped_accepting")
        assert daemon.process is not None
        assert daemon.process.wait(30) == 0

    assert not daemon.find("stopping an unfinished import; it resumes at the next start")
    [_, second] = site.imports("acme")
    assert (second["state"], second["attempts"]) == ("imported", 1)
    assert roster_ids(site.roster("acme"), "students", "student_id") == set(AFTER.student_ids())
    # The import that ended during the shutdown has its email sent before the exit.
    assert [e["state"] for e in site.emails("import_results")] == ["sent", "sent"]
