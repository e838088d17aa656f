"""`rosterdrop web`: the Import Manager alone, beside a real `rosterdrop serve` on the same
PostgreSQL and data directory. The daemon imports what districts upload over SFTP; a district
decides its paused imports on the web process, which applies or rejects them under the
tenant's lock, and the daemon's mailer sends the emails those decisions queue. A web process
that cannot see the import's files refuses to decide rather than failing the import. Choose
Files works there too: the web process checks and imports the five files itself (source web),
and the daemon mails the results."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from daemon.store import tenants
from tests.support.drop import District
from tests.support.process import Daemon, Relay, wait_until
from tests.support.site import Site, upload
from tests.support.webapi import SignedIn, add_admin, paused_import, sign_in, state_of

pytestmark = pytest.mark.slow


@pytest.fixture
def relay() -> Iterator[Relay]:
    server = Relay().start()
    yield server
    server.stop()


def web_process(site: Site, label: str, **more: str) -> Daemon:
    """`rosterdrop web` with the site's settings (and `more`), logging to label.log."""
    process = site.daemon(label, **more)
    process.argv = [sys.executable, "-m", "daemon", "web"]
    return process


def web_url(process: Daemon) -> str:
    line = process.wait_for("rosterdrop web is ready", 30)
    assert line["address"].startswith("http://")
    return f"http://127.0.0.1:{line['web_port']}"


def imported(site: Site, count: int) -> list[dict[str, object]]:
    """Wait until the tenant has `count` imports, the last of them no longer running."""

    def check() -> list[dict[str, object]] | None:
        rows = site.imports("acme")
        running = ("received", "validating", "importing", "approved")
        return rows if len(rows) == count and rows[-1]["state"] not in running else None

    found: list[dict[str, object]] = wait_until(check, 60, f"import #{count} of acme")
    return found


def students(site: Site) -> int:
    return len(site.roster("acme")["students"])


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """PostgreSQL (a second host's case), and SQLite on the daemon's own machine."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'rosterdrop.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def test_decisions_made_on_rosterdrop_web_apply_beside_the_daemon(
    tmp_path: Path, host_keys: Path, database: str, relay: Relay
) -> None:
    smtp = {"ROSTERDROP_SMTP_PORT": str(relay.port), "ROSTERDROP_SMTP_TLS": "none"}
    site = Site.create(
        tmp_path, host_keys, {"ROSTERDROP_DATABASE_URL": database,
                              "ROSTERDROP_SMTP_HOST": "127.0.0.1", **smtp},
    )  # fmt: skip
    try:
        site.add_tenant("acme", "roster@acme.example.org")
        admin = add_admin(site, "acme")
        # The daemon without a web listener of its own: the web process is the only one.
        with site.daemon(ROSTERDROP_WEB_ENABLED="false") as daemon, web_process(site, "web") as web:
            daemon.ready()
            district: SignedIn = sign_in(web_url(web), admin)

            upload(daemon.sftp_port, "acme", District("acme", students=12).files())
            assert imported(site, 1)[-1]["state"] == "imported"
            upload(daemon.sftp_port, "acme", District("acme", students=6).files())
            paused = imported(site, 2)[-1]
            assert paused["state"] == "paused"  # half the students would go

            answer = district.post(f"/api/v1/imports/{paused['id']}/approve", json={"note": "ok"})
            assert answer.status_code == 200, answer.text
            assert answer.json()["state"] == "imported"
            assert answer.json()["decided_by"] == admin
            assert students(site) == 6
            results = relay.wait_for(f"Import Results: acme import #{paused['id']}")
            assert "imported" in str(results["Subject"])  # queued here, sent by the daemon

            upload(daemon.sftp_port, "acme", District("acme", students=3).files())
            third = imported(site, 3)[-1]
            assert third["state"] == "paused"

            # Another web process whose data directory is not the daemon's: it cannot see the
            # files, so it refuses (409) and the import stays paused.
            elsewhere = {"ROSTERDROP_DATA_DIR": str(tmp_path / "elsewhere")}
            with web_process(site, "web-elsewhere", **elsewhere) as stray:
                other = sign_in(web_url(stray), admin)
                refused = other.post(f"/api/v1/imports/{third['id']}/approve")
                assert refused.status_code == 409
                assert "are not in this web server's data directory" in refused.json()["error"]
                assert "Nothing was changed" in refused.json()["error"]
                assert stray.stop() == 0
            assert state_of(site, int(str(third["id"]))) == "paused"

            answer = district.post(f"/api/v1/imports/{third['id']}/reject")
            assert answer.status_code == 200, answer.text
            assert answer.json()["state"] == "rejected"
            assert students(site) == 6
            relay.wait_for(f"Import Results: acme import #{third['id']}")
            [row] = [r for r in site.imports("acme") if r["id"] == third["id"]]
            assert row["archived_at"] is not None  # its files went to the shared archive

            assert web.stop() == 0
            assert daemon.stop() == 0
        assert web.find("rosterdrop web stopped")
    finally:
        site.close()


@pytest.mark.postgres
def test_an_approval_on_rosterdrop_web_waits_for_the_tenants_running_import(
    tmp_path: Path, host_keys: Path, postgres_url: str
) -> None:
    """The tenant's lock is held here as the daemon's import process holds it while it runs:
    the web process's approval waits for it (seen in pg_locks), then applies."""
    site = Site.create(tmp_path, host_keys, {"ROSTERDROP_DATABASE_URL": postgres_url})
    try:
        site.add_tenant("acme")
        admin = add_admin(site, "acme")
        paused = paused_import(site, "acme")
        with site.db() as db, db.read() as conn:
            tenant_id = tenants.get(conn, "acme").id

        def waiting() -> int:
            with site.db() as db, db.read() as conn:
                query = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                return int(conn.execute(sa.text(query)).scalar() or 0)

        with web_process(site, "web") as web, ThreadPoolExecutor(1) as pool:
            district = sign_in(web_url(web), admin)
            with site.db() as db, db.tenant_lock(tenant_id):
                answer = pool.submit(district.post, f"/api/v1/imports/{paused}/approve")
                wait_until(waiting, 30, "the approval to wait for acme's lock")
                assert not answer.done()
                assert state_of(site, paused) == "paused"  # nothing decided while it waits
            done = answer.result(timeout=60)
            assert done.status_code == 200, done.text
            assert done.json()["state"] == "imported_with_errors"
            assert web.stop() == 0
    finally:
        site.close()


def check_and_process(district: SignedIn, tenant: str, files: dict[str, bytes]) -> int:
    """Choose Files as a browser sends it: the CSRF token first, then the five files; then
    Process Import of the upload the page shows. Returns the import's id."""
    checked = district.http.post(
        f"{district.base_url}/tenants/{tenant}/upload",
        files=[("csrf_token", (None, district.csrf_token)),
               *(("files", (name, data, "text/csv")) for name, data in files.items())],
        timeout=120,
    )  # fmt: skip
    assert checked.status_code == 200, checked.text
    assert checked.url.endswith(f"/tenants/{tenant}/upload")  # the 303 back to the page
    page = checked.text
    verdict = re.search(r'id="dry-run-verdict"[^>]*>(.*?)</', page, re.S)
    assert verdict, page
    assert "apply" in verdict.group(1).lower(), verdict.group(1)  # a first import applies
    pending = re.search(r'name="pending" value="([^"]+)"', page)
    assert pending, page
    done = district.http.post(
        f"{district.base_url}/tenants/{tenant}/upload/process",
        data={"csrf_token": district.csrf_token, "pending": pending.group(1)},
        timeout=120,
    )
    assert done.status_code == 200, done.text
    found = re.search(r"/imports/(\d+)$", done.url)
    assert found, done.url  # the 303 to the new import's page
    return int(found.group(1))


@pytest.mark.postgres
def test_choose_files_on_rosterdrop_web_imports_beside_the_daemon_which_mails_the_results(
    tmp_path: Path, host_keys: Path, postgres_url: str, relay: Relay
) -> None:
    """A district checks and processes its five files on `rosterdrop web`: that process's own
    dry run and import worker run them, recorded with source web, and the daemon's mailer
    sends the Import Results."""
    smtp = {"ROSTERDROP_SMTP_PORT": str(relay.port), "ROSTERDROP_SMTP_TLS": "none"}
    site = Site.create(
        tmp_path, host_keys, {"ROSTERDROP_DATABASE_URL": postgres_url,
                              "ROSTERDROP_SMTP_HOST": "127.0.0.1", **smtp},
    )  # fmt: skip
    try:
        site.add_tenant("acme", "roster@acme.example.org")
        admin = add_admin(site, "acme")
        with site.daemon(ROSTERDROP_WEB_ENABLED="false") as daemon, web_process(site, "web") as web:
            daemon.ready()
            district = sign_in(web_url(web), admin)
            import_id = check_and_process(district, "acme", District("acme", students=9).files())
            [row] = imported(site, 1)
            assert (row["id"], row["state"], row["source"]) == (import_id, "imported", "web")
            assert students(site) == 9
            # Run by the web process's import worker, not by the daemon.
            assert [line["import_id"] for line in web.find("import imported")] == [import_id]
            assert daemon.find("import imported") == []
            assert "received</strong> · by web" in district.get(f"/imports/{import_id}").text
            results = relay.wait_for(f"Import Results: acme import #{import_id}")
            assert "roster@acme.example.org" in str(results["To"])
            wait_until(  # sent by the daemon's mailer: the web process has none
                lambda: [e["state"] for e in site.emails("import_results")] == ["sent"], 30,
                "the Import Results recorded as sent",
            )  # fmt: skip
            # The files went to the shared archive, where the daemon's retention finds them.
            assert row["archived_at"] is not None
            assert str(site.settings.paths.archive) in str(row["files_dir"])
            assert web.stop() == 0
            assert daemon.stop() == 0
    finally:
        site.close()
