"""Imports per minute with 1, 2 and 3 `rosterdrop serve` nodes on one PostgreSQL, and the time
from SIGKILL of the busy node to its import finished elsewhere.

    .venv/bin/python bench/cluster.py [--tenants 50] [--students 2000] [--workers 1]
                                      [--big 20000] [--lease 10] [--heartbeat 2]

Real daemons (subprocesses) on a PostgreSQL server of their own (tests/support/postgres.py)
and one data directory, each on its own ports. Throughput: a fresh database for each node
count; every tenant's five files (a generated district, bench/district.py) are put into its
upload folder at once (as an SFTP server on any node would leave them: the bench measures the
imports, not SFTP), and the time runs from then to the last import's finished_at.
`--workers` is each node's [spool] workers: with 1, N nodes run N imports at a time.

Failover: two nodes; one `--big`-student district is put down, and once its import runs,
the node running it is SIGKILLed with its import process (its process group, as systemd
kills a unit). Printed: when the other node started the import again (the lease running out
is most of it: [cluster] lease_seconds) and when it finished it.

On a 2-core machine the gain from more nodes is bounded by the cores: every node's import
processes and PostgreSQL share them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import web_pages  # noqa: E402
from bench.district import generate  # noqa: E402
from daemon.config import load_settings  # noqa: E402
from daemon.store import tenants  # noqa: E402
from daemon.store.database import Database  # noqa: E402
from daemon.store.tables import imports, nodes  # noqa: E402
from tests.support import postgres  # noqa: E402

FILES = ("schools.csv", "teachers.csv", "students.csv", "sections.csv", "enrollments.csv")
ENDED = ("imported", "imported_with_errors", "failed", "rejected", "superseded")


def environment(data: Path, url: str, args: argparse.Namespace) -> dict[str, str]:
    return {
        **web_pages.environment(data, url),
        "ROSTERDROP_WEB_ENABLED": "false",
        "ROSTERDROP_SETTLE_SECONDS": "0.5",
        "ROSTERDROP_SPOOL_RESCAN_SECONDS": "1",
        "ROSTERDROP_SPOOL_WORKERS": str(args.workers),
        "ROSTERDROP_CLUSTER_HEARTBEAT_SECONDS": str(args.heartbeat),
        "ROSTERDROP_CLUSTER_LEASE_SECONDS": str(args.lease),
    }


def add_tenants(env: dict[str, str], names: list[str]) -> Database:
    settings = load_settings(None, env)
    db = Database(settings.database_url)
    db.upgrade()
    with db.write() as conn:
        for name in names:
            tenants.add(conn, name, emails=[f"admin@{name}.example.org"], now=datetime.now(UTC))
    for name in names:
        settings.paths.upload_dir(name).mkdir(parents=True, exist_ok=True)
    return db


@contextmanager
def cluster(env: dict[str, str], count: int, logs: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    with ExitStack() as stack:
        for n in range(count):
            err = stack.enter_context((logs / f"node{n}.log").open("wb"))
            # A session of its own: killpg reaches its import processes, as systemd would.
            node = subprocess.Popen(
                [sys.executable, "-m", "daemon", "serve"], cwd=ROOT, env=env,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                start_new_session=True,
            )  # fmt: skip
            started.append(node)
        for n, process in enumerate(started):
            wait_for_log(logs / f"node{n}.log", "rosterdrop is ready", process)
        try:
            yield started
        finally:
            for process in started:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in started:
                process.wait(120)


def wait_for_log(log: Path, event: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if f'"{event}"' in log.read_text(errors="replace"):
            return
        if process.poll() is not None:
            sys.exit(f"a node exited:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    sys.exit(f"no {event!r} from a node within a minute")


def drop(source: Path, upload: Path) -> None:
    """The five files into an upload folder, each complete when it appears (as SFTP does)."""
    for name in FILES:
        shutil.copyfile(source / name, upload / f".{name}.tmp")
        os.replace(upload / f".{name}.tmp", upload / name)


def wait_ended(db: Database, count: int, seconds: float = 1800) -> list[sa.Row[tuple[object, ...]]]:
    deadline = time.monotonic() + seconds
    query = sa.select(imports.c.id, imports.c.state, imports.c.finished_at, imports.c.node_id)
    while time.monotonic() < deadline:
        with db.read() as conn:
            rows = list(conn.execute(query.where(imports.c.state.in_(ENDED))))
        if len(rows) >= count:
            return rows
        time.sleep(0.1)
    sys.exit(f"fewer than {count} imports ended in {seconds} s")


def throughput(work: Path, server: postgres.Server, count: int, args: argparse.Namespace) -> float:
    url = postgres.create_database(server.url, f"bench_nodes_{count}")
    data = work / f"data-{count}"
    env = environment(data, url, args)
    names = [f"d{n:03d}" for n in range(args.tenants)]
    db = add_tenants(env, names)
    district = work / "district"
    try:
        with cluster(env, count, work.joinpath(f"logs-{count}")) as _:
            began = time.time()
            for name in names:
                drop(district, data / "tenants" / name / "upload")
            rows = wait_ended(db, len(names))
        last = max(r.finished_at.timestamp() for r in rows)
        states = {r.state for r in rows}
        per_node: dict[int, int] = {}
        for r in rows:
            per_node[r.node_id] = per_node.get(r.node_id, 0) + 1
    finally:
        db.close()
    minutes = (last - began) / 60
    rate = len(rows) / minutes
    spread = ", ".join(str(n) for n in sorted(per_node.values(), reverse=True))
    print(f"  {count} node(s): {len(rows)} imports in {last - began:6.1f} s = {rate:6.1f}/min"
          f" (states {sorted(states)}; imports per node {spread})", flush=True)  # fmt: skip
    return rate


def failover(work: Path, server: postgres.Server, args: argparse.Namespace) -> None:
    url = postgres.create_database(server.url, "bench_failover")
    data = work / "data-failover"
    env = environment(data, url, args)
    db = add_tenants(env, ["big"])
    big = work / "big"
    generate(big, args.big)
    try:
        with cluster(env, 2, work.joinpath("logs-failover")) as started:
            drop(big, data / "tenants" / "big" / "upload")
            query = sa.select(imports.c.state, imports.c.node_id, imports.c.attempts)
            while True:
                with db.read() as conn:
                    row = conn.execute(query).first()
                if row is not None and row.state in ("validating", "importing"):
                    break
                time.sleep(0.02)
            time.sleep(0.2)  # into its work
            with db.read() as conn:
                pid = conn.execute(sa.select(nodes.c.pid).where(nodes.c.id == row.node_id)).scalar()
            [victim] = [p for p in started if p.pid == pid]
            killed = time.time()
            os.killpg(victim.pid, signal.SIGKILL)
            victim.wait(10)
            while True:  # the other node takes it over once the dead one's lease ran out
                with db.read() as conn:
                    owner = conn.execute(sa.select(imports.c.node_id)).scalar()
                if owner != row.node_id:
                    taken = time.time()
                    break
                time.sleep(0.02)
            [done] = wait_ended(db, 1)
            with db.read() as conn:
                attempts = conn.execute(sa.select(imports.c.attempts)).scalar()
    finally:
        db.close()
    print(f"failover ({args.big:,} students; lease {args.lease:g} s, heartbeat"
          f" {args.heartbeat:g} s): SIGKILL → taken over by the other node"
          f" {taken - killed:.1f} s, → import finished"
          f" {done.finished_at.timestamp() - killed:.1f} s ({done.state},"
          f" attempt {attempts})")  # fmt: skip
    if attempts != 2:
        print("  (the kill came after the import had committed: try a larger --big)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--students", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=1, help="[spool] workers of each node")
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--big", type=int, default=20000, help="the failover's district")
    parser.add_argument("--lease", type=float, default=10.0)
    parser.add_argument("--heartbeat", type=float, default=2.0)
    args = parser.parse_args()
    server = postgres.Server()
    server.start()
    try:
        with tempfile.TemporaryDirectory(prefix="rosterdrop-cluster-") as tmp:
            work = Path(tmp)
            generate(work / "district", args.students)
            for count in args.nodes:
                work.joinpath(f"logs-{count}").mkdir()
            work.joinpath("logs-failover").mkdir()
            print(f"{args.tenants} tenants x {args.students:,} students, {args.workers}"
                  f" worker(s) a node, {os.cpu_count()} cores", flush=True)  # fmt: skip
            rates = {count: throughput(work, server, count, args) for count in args.nodes}
            base = rates[args.nodes[0]]
            print("ratio to one node: " + ", ".join(
                f"{count} → {rate / base:.2f}x" for count, rate in rates.items()
            ))  # fmt: skip
            failover(work, server, args)
            print(json.dumps({"imports_per_minute": rates}))
    finally:
        server.remove()


if __name__ == "__main__":
    main()
