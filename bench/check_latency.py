"""How soon `rosterdrop serve` answers a set dropped in /check, beside an import of the same.

    .venv/bin/python bench/check_latency.py [--students 2000] [--checks 5] [--settle 1]

The real daemon runs as a subprocess on the embedded defaults (SQLite) in a temporary data
directory (bench/serve_latency.py's set-up). A first import over SFTP fills the roster; then
each of `--checks` sets changing about 1 % of the rows is put into /check by paramiko, and the
latency is from the fifth file's acknowledged close until the readable report is listed in
/check/results by the same client, as an SIS script polling the folder sees it. The same set
then goes to /upload for an import's latency side by side. Every figure is printed, then the
medians. The import history must hold only the imports: the checks are none.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.district import generate  # noqa: E402
from bench.serve_latency import FILES, add_tenants, committed, connect, daemon, environment  # noqa: E402
from daemon.store.database import Database  # noqa: E402
from daemon.store.tables import imports  # noqa: E402


def check(port: int, folder: Path) -> float:
    """Put the set into /check; returns the seconds until its report.txt is listed."""
    with connect(port, "bench") as client, client.open_sftp() as sftp:
        before = set(sftp.listdir("/check/results"))
        for name in FILES:
            sftp.putfo(io.BytesIO((folder / name).read_bytes()), f"/check/{name}")
        closed = time.time()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            new = set(sftp.listdir("/check/results")) - before
            if any(name.endswith("-report.txt") for name in new):
                return time.time() - closed
            time.sleep(0.01)
    sys.exit("no answer in /check/results within two minutes")


def upload(port: int, folder: Path) -> float:
    with connect(port, "bench") as client, client.open_sftp() as sftp:
        for name in FILES:
            sftp.putfo(io.BytesIO((folder / name).read_bytes()), f"/upload/{name}")
        return time.time()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--students", type=int, default=2000)
    parser.add_argument("--checks", type=int, default=5)
    parser.add_argument("--settle", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rosterdrop-check-") as tmp:
        work = Path(tmp)
        # Each set is handed in twice (a check, an import): past the hourly bound of six.
        env = {**environment(work / "data", args.settle), "ROSTERDROP_SFTP_MAX_SETS_PER_HOUR": "0"}
        db: Database = add_tenants(env, ["bench"])
        try:
            with daemon(env, work / "serve.log") as (_, port):
                generate(work / "first", args.students, change=0.0, seed=0)
                upload(port, work / "first")
                last_id, _, _ = committed(db, 0)
                print(f"district: {args.students} students; settle {args.settle} s")
                checked, imported = [], []
                for run in range(1, args.checks + 1):
                    folder = work / f"set-{run}"
                    generate(folder, args.students, change=0.01, seed=run)
                    checked.append(check(port, folder))
                    closed = upload(port, folder)
                    last_id, state, finished = committed(db, last_id)
                    imported.append(finished - closed)
                    print(
                        f"  set {run}: check answered {checked[-1]:5.2f} s, import ({state})"
                        f" committed {imported[-1]:5.2f} s after the last close"
                    )
                with db.read() as conn:
                    count = conn.execute(sa.select(sa.func.count()).select_from(imports)).scalar()
            print(
                f"medians: check {statistics.median(checked):.2f} s, import"
                f" {statistics.median(imported):.2f} s (settle {args.settle} s in both)"
            )
            print(f"import history: {count} imports (1 first + {args.checks}); checks are none")
        finally:
            db.close()


if __name__ == "__main__":
    main()
