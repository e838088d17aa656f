"""How soon `rosterdrop serve` commits an upload, and its memory with 50 idle SFTP sessions.

    .venv/bin/python bench/serve_latency.py [--students 2000] [--uploads 5] [--settle 1]

The real daemon runs as a subprocess on the embedded defaults (SQLite, .eml emails) in a
temporary data directory. A paramiko client uploads a district's five files; the latency is
from the moment the fifth file's close is acknowledged to the import's finished_at (the commit),
read from the database. A first import fills the roster (every row inserted); then each of the
`--uploads` re-uploads changes about 1 % of the rows (a day's changes). Every import's latency
is printed, then the first import's and the median of the re-uploads', each split into the
settle time and the rest. Target (issue 12), for either: the settle time plus at most 1 s. Then
50 tenants each open an SFTP session and leave it idle, and the resident memory of the daemon's
main process is shown, before and with them (its fork server and helpers, at idle, beside).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import paramiko
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.district import generate  # noqa: E402
from daemon.config import load_settings  # noqa: E402
from daemon.sftp import hash_password  # noqa: E402
from daemon.store import tenants  # noqa: E402
from daemon.store.database import Database  # noqa: E402
from daemon.store.tables import imports  # noqa: E402

PASSWORD = "bench-password-0123"
IDLE_SESSIONS = 50
TARGET_AFTER_SETTLE = 1.0  # seconds from settled to committed (issue 12)
FILES = ("schools.csv", "teachers.csv", "students.csv", "sections.csv", "enrollments.csv")


def environment(data: Path, settle: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROSTERDROP_")}
    return {
        **env,
        "ROSTERDROP_DATA_DIR": str(data),
        "ROSTERDROP_SFTP_HOST": "127.0.0.1",
        "ROSTERDROP_SFTP_PORT": "0",
        "ROSTERDROP_HTTP_PORT": "0",
        "ROSTERDROP_SETTLE_SECONDS": str(settle),
        "ROSTERDROP_LOG_FORMAT": "json",
    }


def add_tenants(env: dict[str, str], names: list[str]) -> Database:
    settings = load_settings(None, env)
    db = Database(settings.database_url, lock_dir=settings.paths.locks)
    db.upgrade()
    password_hash = hash_password(PASSWORD)
    with db.write() as conn:
        for name in names:
            tenants.add(conn, name, emails=[], now=datetime.now(UTC), password_hash=password_hash)
    for name in names:
        settings.paths.upload_dir(name).mkdir(parents=True, exist_ok=True)
    return db


@contextmanager
def daemon(env: dict[str, str], log: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    with log.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "daemon", "serve"], cwd=ROOT, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    try:
        port = wait_for_log(log, "rosterdrop is ready", process)["sftp_port"]
        yield process, int(port)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)


def wait_for_log(log: Path, event: str, process: subprocess.Popen[bytes]) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if f'"{event}"' in line:
                found: dict[str, object] = json.loads(line)
                return found
        if process.poll() is not None:
            sys.exit(f"the daemon exited:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    sys.exit(f"no {event!r} from the daemon within a minute")


def connect(port: int, username: str) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # noqa: S507 - loopback
    client.connect("127.0.0.1", port, username, PASSWORD, allow_agent=False, look_for_keys=False)
    return client


def upload(port: int, folder: Path) -> float:
    """The five files, the biggest last; returns the wall-clock time of the last close."""
    with connect(port, "bench") as client, client.open_sftp() as sftp:
        for name in FILES:
            sftp.putfo(io.BytesIO((folder / name).read_bytes()), f"/upload/{name}")
        return time.time()


def committed(db: Database, after_id: int) -> tuple[int, str, float]:
    """Wait for the first import after `after_id` to end: (id, state, finished_at)."""
    deadline = time.monotonic() + 120
    query = sa.select(imports.c.id, imports.c.state, imports.c.finished_at).where(
        imports.c.id > after_id, imports.c.finished_at.is_not(None)
    )
    while time.monotonic() < deadline:
        with db.read() as conn:
            row = conn.execute(query.order_by(imports.c.id)).first()
        if row is not None:
            return row.id, row.state, row.finished_at.timestamp()
        time.sleep(0.01)
    sys.exit("no import ended within two minutes")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def measure_latency(port: int, db: Database, work: Path, args: argparse.Namespace) -> None:
    last_id, latencies = 0, []
    print(f"district: {args.students} students; settle {args.settle} s")
    for run in range(args.uploads + 1):
        folder = work / f"upload-{run}"
        # Run 0 is the first import; each later one changes ~1 % of the previous rows.
        generate(folder, args.students, change=0.01 if run else 0.0, seed=run)
        closed = upload(port, folder)
        last_id, state, finished = committed(db, last_id)
        latency = finished - closed
        label = "first import" if run == 0 else f"upload {run}"
        print(f"  {label:13} {state:22} {latency:6.2f} s after the last close")
        latencies.append(latency)
    first = latencies[0]
    print(f"first import: {first:.2f} s = settle {args.settle} s"
          f" + {first - args.settle:.2f} s"
          f" (target: + {TARGET_AFTER_SETTLE} s at most)")  # fmt: skip
    if args.uploads:
        median = statistics.median(latencies[1:])
        print(f"re-uploads, median of {args.uploads}: {median:.2f} s = settle {args.settle} s"
              f" + {median - args.settle:.2f} s"
              f" (target: + {TARGET_AFTER_SETTLE} s at most)")  # fmt: skip


def measure_memory(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    helpers = children(process.pid)
    print(f"daemon RSS, idle: {rss_mib(process.pid):.1f} MiB"
          f" (fork server and helpers: {sum(rss_mib(p) for p in helpers):.1f} MiB)")  # fmt: skip
    with ExitStack() as stack:
        for i in range(IDLE_SESSIONS):
            client = stack.enter_context(connect(port, f"idle{i:02d}"))
            stack.enter_context(client.open_sftp())
        time.sleep(1)
        logins = log.read_text().count('"tenant": "idle')
        print(f"daemon RSS with {IDLE_SESSIONS} idle SFTP sessions: {rss_mib(process.pid):.1f} MiB"
              f" ({logins} logins logged)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--students", type=int, default=2000)
    parser.add_argument("--uploads", type=int, default=5)
    parser.add_argument("--settle", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rosterdrop-latency-") as tmp:
        work = Path(tmp)
        env = environment(work / "data", args.settle)
        db = add_tenants(env, ["bench", *(f"idle{i:02d}" for i in range(IDLE_SESSIONS))])
        try:
            with daemon(env, work / "serve.log") as (process, port):
                measure_latency(port, db, work, args)
                measure_memory(process, port, work / "serve.log")
        finally:
            db.close()


if __name__ == "__main__":
    main()
