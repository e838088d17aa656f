#!/usr/bin/env python3
"""Validation alone, engine against engine: careful row by row, batched, and columnar.

On a clean district and on a copy corrupted the ways real exports are (`bench/corrupted.py`),
each engine validates the five files into real staging tables (SQLite, or PostgreSQL with
`--postgres`) in a process of its own: time, peak RSS (VmHWM), and whether its problems are
identical to the careful path's, printed as ratios to the careful path in one run.

    .venv/bin/python bench/validation.py [--students 100000] [--postgres]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corrupted import corrupt
from bench.district import generate
from tests.support.postgres import create_database, postgres_server

ENGINES = ("careful", "batch", "columnar")


def validate_once(engine: str, folder: Path, url: str, report: Path) -> dict[str, object]:
    """One engine over one upload, in this process: seconds, peak RSS, problems' digest."""
    from daemon.clever.files import find_files
    from daemon.clever.validate import fingerprints, validate
    from daemon.roster.problems import ProblemLog
    from daemon.roster.tenant import TenantSettings
    from daemon.store.database import Database
    from daemon.store.staging import Stage

    if engine == "columnar":
        # As the daemon's fork server does: the libraries are loaded before any import starts.
        import daemon.clever.columns.engine
        import daemon.store.staging_load  # noqa: F401
    db = Database(url)
    found = find_files(folder)
    prints = fingerprints(found)  # the identical-upload check's work, before the clock
    with report.open("w", encoding="utf-8", newline="") as out, db.read() as conn:
        problems = ProblemLog(out)
        started = time.perf_counter()
        stage = Stage(conn)
        validation = validate(found, prints, TenantSettings(), problems, stage, engine=engine)  # type: ignore[arg-type]
        stage.flush()
        seconds = time.perf_counter() - started
        stage.close()
    db.close()
    return {
        "seconds": seconds,
        "rss_mb": _peak_rss_mb(),
        "problems": problems.total,
        "digest": hashlib.sha256(report.read_bytes()).hexdigest(),
        "columnar": list(validation.columnar),
    }


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _child(engine: str, folder: Path, url: str, report: Path) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", engine, str(folder), url, str(report)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, object] = json.loads(out.stdout.splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=0.01, help="share of rows corrupted")
    parser.add_argument("--postgres", action="store_true", help="stage into PostgreSQL")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        engine, folder, url, report = args.child
        print(json.dumps(validate_once(engine, Path(folder), url, Path(report))))
        return
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        clean, broken = work / "clean", work / "corrupted"
        generate(clean, args.students)
        shutil.copytree(clean, broken)
        corrupt(broken, rate=args.rate)
        if args.postgres:
            admin = stack.enter_context(postgres_server())
            url = create_database(admin, "bench")
        else:
            url = f"sqlite:///{work / 'bench.db'}"
        print(f"{args.students:,} students, {'PostgreSQL' if args.postgres else 'SQLite'}")
        print(f"{'district':10} {'engine':9} {'seconds':>8} {'ratio':>6} {'peak MB':>8}"
              f" {'problems':>9}  identical  columnar files")  # fmt: skip
        for name, folder in (("clean", clean), ("corrupted", broken)):
            results = {e: _child(e, folder, url, work / f"{name}-{e}.csv") for e in ENGINES}
            base = results["careful"]
            for engine, r in results.items():
                same = "yes" if r["digest"] == base["digest"] else "NO"
                ratio = float(r["seconds"]) / float(base["seconds"])  # type: ignore[arg-type]
                files = ", ".join(f.removesuffix(".csv") for f in r["columnar"]) or "-"  # type: ignore[attr-defined]
                print(
                    f"{name:10} {engine:9} {r['seconds']:8.2f} {ratio:5.2f}x {r['rss_mb']:8.0f}"
                    f" {r['problems']:9,}  {same:9}  {files}"
                )


if __name__ == "__main__":
    main()
