"""Several `rosterdrop serve` on one PostgreSQL and one data directory: a vendor's cluster.

Three real daemons, each on its own ports, share the database and the data directory. An SIS
may send each file of an upload through another node; nodes die (SIGKILL of the whole
service, as systemd's kill or a lost machine does) in the middle of an import; a node
restarts beside another's import. Leases are short here (1.5 s) so that takeovers are quick.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest
from test_ops_lockout import REFUSED
from test_serve_crash import descendants, running

from daemon.spool import partial_name
from daemon.store import nodes
from tests.support import drop
from tests.support.drop import District, roster_ids
from tests.support.process import Daemon, metric, wait_until
from tests.support.site import PASSWORD, Site, upload

pytestmark = pytest.mark.postgres

CLUSTER = {
    "ROSTERDROP_CLUSTER_HEARTBEAT_SECONDS": "0.3",
    "ROSTERDROP_CLUSTER_LEASE_SECONDS": "1.5",
    "ROSTERDROP_SETTLE_SECONDS": "0.5",
}
NODES = 3


@pytest.fixture
def site(make_site: Callable[..., Site], postgres_url: str) -> Site:
    return make_site(ROSTERDROP_DATABASE_URL=postgres_url, **CLUSTER)


@contextlib.contextmanager
def cluster(site: Site, count: int = NODES, **env: str) -> Iterator[list[Daemon]]:
    """`count` nodes, all ready; each stopped cleanly (exit 0) when the block ends."""
    daemons = [site.daemon(f"node{n}", **env) for n in range(1, count + 1)]
    with contextlib.ExitStack() as stack:
        for daemon in daemons:
            stack.enter_context(daemon)
        for daemon in daemons:
            daemon.ready()
        yield daemons
        for daemon in daemons:
            if daemon.process is not None and daemon.process.poll() is None:
                assert daemon.stop() == 0, daemon.tail()


def node_of(site: Site, import_id: int) -> dict[str, Any]:
    with site.db() as db, db.read() as conn:
        [node] = [n for n in nodes.listing(conn) if import_id in n.running]
        return {"id": node.id, "pid": node.pid}


def kill_service(daemon: Daemon) -> None:
    """SIGKILL the daemon and its import processes, as systemd kills a control group."""
    victims = descendants(daemon.pid)
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert daemon.process is not None
    assert daemon.process.wait(10) == -signal.SIGKILL
    wait_until(lambda: not any(running(pid) for pid in victims), 10, "the node's processes")


SETTLE = 2.0


def test_the_files_of_one_upload_through_two_nodes_make_one_import(site: Site) -> None:
    site.add_tenant("acme", "admin@acme.example.org")
    files = District("acme").files()
    names = list(files)
    with (
        cluster(site, ROSTERDROP_SETTLE_SECONDS=str(SETTLE)) as (first, second, third),
        # One SFTP session per file's worth, through whichever node the balancer picks.
        drop.sftp_session(first.sftp_port, "acme", PASSWORD) as one,
        drop.sftp_session(second.sftp_port, "acme", PASSWORD) as two,
        drop.sftp_session(third.sftp_port, "acme", PASSWORD) as three,
    ):
        drop.upload(one, {name: files[name] for name in names[:3]})
        drop.upload(two, {name: files[name] for name in names[3:]})
        # The SIS sends one file again through a third node: the set settles from that write.
        last_write = time.time()
        drop.upload(three, {"students.csv": files["students.csv"]})
        [row] = wait_until(lambda: ended(site, "acme", 1), 30, "one import")
    assert row["received_at"].timestamp() >= last_write + SETTLE
    assert row["state"] == "imported"
    assert len(site.imports("acme")) == 1
    claims = [d for d in (first, second, third) if d.find("upload claimed", tenant="acme")]
    assert len(claims) == 1
    assert [e["import_id"] for e in site.emails("import_results")] == [row["id"]]
    assert roster_ids(site.roster("acme"), "students", "student_id") == set(
        District("acme").student_ids()
    )


def test_twenty_tenants_at_once_are_each_imported_once_in_order(site: Site) -> None:
    tenants = [site.add_tenant(f"d{n:02d}", f"admin@d{n:02d}.example.org") for n in range(20)]
    first_sets = {t: District(t, students=8) for t in tenants}
    second_sets = {t: District(t, students=10) for t in tenants}
    with cluster(site) as daemons, concurrent.futures.ThreadPoolExecutor(8) as pool:

        def send(n: int, tenant: str, district: District) -> None:
            upload(daemons[n % NODES].sftp_port, tenant, district.files())

        list(pool.map(send, range(20), tenants, [first_sets[t] for t in tenants]))
        # The next day's export, through another node, once the first one was claimed.
        for tenant in tenants:
            wait_until(
                lambda t=tenant: not any(site.settings.paths.upload_dir(t).iterdir()),
                30,
                f"{tenant}'s first upload to be claimed",
            )
        list(pool.map(send, range(1, 21), tenants, [second_sets[t] for t in tenants]))
        for tenant in tenants:
            wait_until(lambda t=tenant: ended(site, t, 2), 90, f"both imports of {tenant}")
    by_node: dict[int, int] = {}
    results = site.emails("import_results")
    for tenant in tenants:
        first, second = site.imports(tenant)
        assert (first["state"], second["state"]) == ("imported", "imported")
        assert first["attempts"] == second["attempts"] == 1
        assert first["finished_at"] <= second["started_at"]  # in upload order
        ids = roster_ids(site.roster(tenant), "students", "student_id")
        assert ids == set(second_sets[tenant].student_ids())
        assert [
            e["import_id"] for e in results if e["import_id"] in (first["id"], second["id"])
        ] == [
            first["id"],
            second["id"],
        ]
        for row in (first, second):
            by_node[row["node_id"]] = by_node.get(row["node_id"], 0) + 1
    assert len(results) == 40
    assert len(by_node) >= 2, f"the imports spread over the nodes: {by_node}"


def ended(site: Site, tenant: str, count: int) -> list[dict[str, Any]] | None:
    with site.db() as db:
        return drop.ended_imports(db, tenant, count)


BIG = District("big", students=3_000, sections=300)


@pytest.mark.parametrize("point", ["validated-before-plan", "apply-before-commit"])
def test_a_node_killed_mid_import_leaves_it_to_another_that_finishes_it_once(
    site: Site, tmp_path: Path, point: str
) -> None:
    site.add_tenant("big", "admin@big.example.org")
    held = tmp_path / "held"
    held.mkdir()
    stop_at = {"TESTPOINT_ROSTERDROP_STOP_AT": f"{point}:{held}"}
    with cluster(site, **stop_at) as daemons:
        upload(daemons[0].sftp_port, "big", BIG.files())
        wait_until(lambda: (held / f"{point}.reached").exists(), 60, f"the import at {point}")
        [row] = site.imports("big")
        owner = node_of(site, row["id"])
        [victim] = [d for d in daemons if d.pid == owner["pid"]]
        kill_service(victim)
        assert site.roster("big")["students"] == []  # its transaction never committed
        # The next import process to reach the point passes it.
        [done] = wait_until(lambda: ended(site, "big", 1), 90, "another node to finish it")
        survivors = [d for d in daemons if d is not victim]
        [taker] = [d for d in survivors if d.find("imports of dead nodes taken over")]
    assert done["state"] == "imported"
    assert done["attempts"] == 2
    assert done["node_id"] != owner["id"]
    assert taker.find("import started", import_id=done["id"])
    roster = site.roster("big")
    assert roster_ids(roster, "students", "student_id") == set(BIG.student_ids())
    assert len(roster["enrollments"]) == 2 * BIG.students
    assert [e["import_id"] for e in site.emails("import_results")] == [done["id"]]
    assert not any(site.settings.paths.spool.rglob("*.csv"))


def test_a_node_that_restarts_leaves_another_nodes_import_alone(site: Site, tmp_path: Path) -> None:
    site.add_tenant("big", "admin@big.example.org")
    held = tmp_path / "held"
    held.mkdir()
    point = "validated-before-plan"
    with cluster(site, 2, TESTPOINT_ROSTERDROP_STOP_AT=f"{point}:{held}") as daemons:
        upload(daemons[0].sftp_port, "big", BIG.files())
        wait_until(lambda: (held / f"{point}.reached").exists(), 60, f"the import at {point}")
        [row] = site.imports("big")
        owner = node_of(site, row["id"])
        [busy] = [d for d in daemons if d.pid == owner["pid"]]
        [other] = [d for d in daemons if d is not busy]
        status = cluster_status(site)
        assert sorted((n["pid"], n["running"]) for n in status) == sorted(
            [(busy.pid, [row["id"]]), (other.pid, [])]
        )
        assert {n["sftp_port"] for n in status} == {d.sftp_port for d in daemons}
        for daemon in daemons:  # each node answers for itself
            code, body = daemon.get("/readyz")
            assert code == 200
            assert json.loads(body)["checks"]["cluster_lease"] is True
            assert metric(daemon.metrics(), "rosterdrop_cluster_live_nodes") == 2
        assert other.stop() == 0
        assert [n["pid"] for n in cluster_status(site)] == [busy.pid]
        [stopped] = [n for n in cluster_status(site, "--all") if n["pid"] == other.pid]
        assert stopped["live"] is False
        assert stopped["stopped_at"] is not None
        with site.daemon("restarted") as restarted:
            restarted.ready()
            wait_until(lambda: restarted.find("cluster node registered"), 10, "registration")
            (held / f"{point}.go").touch()
            [done] = wait_until(lambda: ended(site, "big", 1), 60, "the import to end")
            assert restarted.stop() == 0
        other.process = None  # stopped above
    assert restarted.find("imports of dead nodes taken over") == []
    assert restarted.find("import started") == []
    assert (done["state"], done["attempts"], done["node_id"]) == ("imported", 1, owner["id"])
    assert [e["import_id"] for e in site.emails("import_results")] == [done["id"]]


def cluster_status(site: Site, *args: str) -> list[dict[str, Any]]:
    result = site.cli("cluster", "status", "--json", *args)
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    text = site.cli("cluster", "status", *args)
    assert text.returncode == 0, text.stderr
    assert text.stdout.count("node ") == len(rows), text.stdout
    return rows


def test_every_node_presents_the_one_host_key_even_when_they_start_together(
    site: Site,
) -> None:
    for key in site.settings.paths.host_keys.iterdir():
        key.unlink()  # a new installation: the first node to start makes them
    with cluster(site) as daemons:
        keys = {drop.server_fingerprint(d.sftp_port) for d in daemons}
    assert len(keys) == 1, keys
    assert len(list(site.settings.paths.host_keys.glob("ssh_host_*_key"))) == 2


def test_a_starting_node_leaves_another_nodes_upload_in_progress_alone(site: Site) -> None:
    upload = site.settings.paths.upload_dir("acme")
    upload.mkdir(parents=True)
    in_progress = upload / partial_name("students.csv")  # another node is writing it
    in_progress.write_bytes(b"school_id,student_id\r\n")
    abandoned = upload / partial_name("teachers.csv")
    abandoned.write_bytes(b"school_id,teacher_id\r\n")
    idle = site.settings.sftp.idle_timeout
    os.utime(abandoned, (time.time() - idle - 1,) * 2)  # older than any session may idle
    with cluster(site, 1):
        assert in_progress.exists()
        assert not abandoned.exists()


def test_a_stuck_upload_seen_by_every_node_is_reported_once(site: Site) -> None:
    site.add_tenant("acme", "admin@acme.example.org")
    files = District("acme").files()
    with cluster(site, ROSTERDROP_SPOOL_STALE_HOURS="0.0005") as daemons:  # 1.8 s
        upload(daemons[0].sftp_port, "acme", {"schools.csv": files["schools.csv"]})
        wait_until(lambda: site.emails("incomplete_upload"), 30, "the report")
        # Every node rescans every 0.3 s: each gets several looks at the same stuck set.
        time.sleep(2)
    assert len(site.emails("incomplete_upload")) == 1
    assert sum(len(d.find("incomplete upload", tenant="acme")) for d in daemons) == 1


def test_a_ban_earned_on_one_node_holds_on_the_others(site: Site) -> None:
    site.add_tenant("acme", "admin@acme.example.org")
    with cluster(site, ROSTERDROP_SFTP_MAX_AUTH_FAILURES="4") as (first, second, third):
        # Two guesses on each of two nodes: four for the cluster, though two for each node.
        for daemon in (first, second, first, second):
            assert not logs_in(daemon.sftp_port, "127.0.0.7", "guess")
        wait_until(
            lambda: all(
                d.find("sftp.login.banned", peer="127.0.0.7") for d in (first, second, third)
            ),
            10,
            "every node to ban the address",
        )
        for daemon in (first, second, third):
            assert not logs_in(daemon.sftp_port, "127.0.0.7", PASSWORD)
            assert daemon.find("sftp.login.throttled", reason="address banned")
        assert logs_in(third.sftp_port, "127.0.0.8", PASSWORD)  # another address: at once


def logs_in(port: int, source: str, password: str) -> bool:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    transport = paramiko.Transport(sock)
    try:
        transport.connect(username="acme", password=password)
        return True
    except REFUSED:
        return False
    finally:
        transport.close()
