"""How fast and lean a district's import is, against the floor, measured side by side in one run.

The floor is the least any importer must do: Python's csv parsing of the five files plus
PostgreSQL COPY of them into unindexed tables. Against it: rosterdrop's first import, an
identical re-import, and a re-import with about 1 % of the rows changed (last names, grades,
arrivals, leavers, sections that move), on PostgreSQL and on SQLite. Each step runs in a
fresh process, so its peak RSS (VmHWM) is its own; like the daemon's import processes, which
are forked from a fork server that imported the pipeline (daemon/runner.py PRELOAD), the step
imports `daemon.worker` before its clock starts. The whole sequence (floor, then both
databases from empty) runs `--runs` times; the table shows the medians, each step as the
median of its ratios to the floor measured in the same run.

    .venv/bin/python bench/roster_import.py [--students 100000] [--runs 3] [--py-spy DIR]

`--py-spy DIR` records each import step of the last run with py-spy (installed separately:
`.venv/bin/pip install py-spy`) into DIR/<database>-<step>.txt, collapsed stacks.

Targets (issue 12), as ratios to the floor: first import <= 2.0x on PostgreSQL and <= 2.5x on
SQLite; 1 % changed <= 1.2x and <= 1.5x; identical <= 0.1x on both; peak RSS <= 300 MB.
Where an import's time goes: the `import validated/planned/kept/applied` log lines, or py-spy.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.district import generate  # noqa: E402
from tests.support.postgres import create_database, postgres_server  # noqa: E402

FILES = ("schools", "students", "teachers", "sections", "enrollments")


def floor(url: str, folder: Path) -> None:
    import psycopg

    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as conn:
        for name in FILES:
            with (folder / f"{name}.csv").open(newline="", encoding="utf-8-sig") as handle:
                reader = csv.reader(handle)
                header = next(reader)
                columns = ", ".join(f'"{h.strip().lower()}" text' for h in header)
                conn.execute(f"DROP TABLE IF EXISTS floor_{name}")
                conn.execute(f"CREATE TABLE floor_{name} ({columns})")
                with conn.cursor() as cursor, cursor.copy(f"COPY floor_{name} FROM STDIN") as copy:
                    for row in reader:
                        copy.write_row(row)
        conn.commit()


def prepare(url: str, data_dir: Path) -> None:
    """Schema and tenant, outside the timed part."""
    from datetime import UTC, datetime

    from daemon.store import tenants
    from daemon.store.database import Database

    db = Database(url, lock_dir=data_dir / "locks")
    db.upgrade()
    with db.write() as conn:
        if tenants.find(conn, "bench") is None:
            tenants.add(conn, "bench", emails=["bench@example.org"], now=datetime.now(UTC))
    db.close()


def import_once(url: str, data_dir: Path, folder: Path) -> str:
    from daemon.clever.files import find_files
    from daemon.config import load_settings
    from daemon.pipeline import Pipeline
    from daemon.store import tenants
    from daemon.store.database import Database

    settings = load_settings(
        None, {"ROSTERDROP_DATA_DIR": str(data_dir), "ROSTERDROP_DATABASE_URL": url}
    )
    db = Database(url, lock_dir=settings.paths.locks)
    with db.read() as conn:
        tenant = tenants.get(conn, "bench")
    pipeline = Pipeline(db, settings.paths, settings.smtp)
    report = pipeline.run(pipeline.receive(tenant, find_files(folder), source="cli", move=False))
    db.close()
    return report.state.value


def child(step: str, url: str, data_dir: str, folder: str) -> None:
    """Run one step in this (fresh) process and print its time and peak memory as JSON."""
    if step == "prepare":
        prepare(url, Path(data_dir))
        return
    if step != "floor":  # what the fork server has imported: the pipeline, polars, pyarrow
        import importlib

        from daemon.runner import PRELOAD

        for module in PRELOAD:
            importlib.import_module(module)
    start = time.perf_counter()
    outcome = (
        floor(url, Path(folder))
        if step == "floor"
        else import_once(url, Path(data_dir), Path(folder))
    )
    seconds = time.perf_counter() - start
    # VmHWM: this process's own peak (ru_maxrss would carry the bench's over the exec).
    status = Path("/proc/self/status").read_text()
    rss_mb = int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]
    print(json.dumps({"seconds": seconds, "rss_mb": rss_mb, "outcome": outcome}))


def measure(
    step: str, url: str, data_dir: Path, folder: Path, profile: Path | None = None
) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", step, url, str(data_dir), str(folder)]
    if profile is not None:
        # Collapsed stacks, one per line: `sort -t' ' -k2 -n` or a flame graph reads them.
        # --idle: also the samples where the import waits on the database or runs polars
        # with the GIL released, so the stacks add up to the wall-clock time.
        py_spy = Path(sys.executable).with_name("py-spy")
        command = [str(py_spy), "record", "--idle", "-r", "200", "-f", "raw", "-o", str(profile),
                   "--", *command]  # fmt: skip
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    if step == "prepare":
        return {}
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    figures = dict(json.loads(lines[-1]))
    # The pipeline's own log line: how long validating and staging took (None: identical).
    log = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)  # colours off
    validated = re.search(r"import validated\W.*?seconds=([\d.]+)", log)
    figures["validated"] = float(validated.group(1)) if validated else None
    return figures


STEPS = {"first import": "base", "identical re-import": "base", "1% changed re-import": "changed"}
DATABASES = ("postgresql", "sqlite")
TARGETS = {
    "postgresql": {"first import": 2.0, "identical re-import": 0.1, "1% changed re-import": 1.2},
    "sqlite": {"first import": 2.5, "identical re-import": 0.1, "1% changed re-import": 1.5},
}
RSS_TARGET_MB = 300
Run = dict[str, dict[str, dict[str, Any]]]  # database -> step -> figures


def one_run(server: Any, n: int, tmp: Path, profile: Path | None) -> tuple[float, Run]:
    """The floor, then each database from empty: first import, identical, 1 % changed."""
    folders = {"base": tmp / "district", "changed": tmp / "district-changed"}
    floor_s = measure("floor", create_database(server, f"floor{n}"), tmp, folders["base"])
    results: Run = {}
    for kind in DATABASES:
        data_dir = tmp / f"data-{kind}-{n}"
        url = (
            create_database(server, f"roster{n}")
            if kind == "postgresql"
            else f"sqlite:///{data_dir}/rosterdrop.db"
        )
        measure("prepare", url, data_dir, folders["base"])
        results[kind] = {}
        for step, folder in STEPS.items():
            out = None
            if profile is not None:
                out = profile / f"{kind}-{step.split()[0].replace('%', 'pct')}.txt"
            results[kind][step] = measure("import", url, data_dir, folders[folder], out)
    return floor_s["seconds"], results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--py-spy", type=Path, dest="profile", help="record the last run")
    parser.add_argument("--child", nargs=4, metavar=("STEP", "URL", "DATA_DIR", "FOLDER"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rosterdrop-bench-") as tmp:
        counts = generate(Path(tmp) / "district", args.students)
        generate(Path(tmp) / "district-changed", args.students, change=0.01)
        size = sum(p.stat().st_size for p in (Path(tmp) / "district").glob("*.csv")) / 1e6
        print(f"district: {counts} ({size:.1f} MB)")
        runs: list[tuple[float, Run]] = []
        with postgres_server(fsync=True) as server:
            for n in range(args.runs):
                last = n == args.runs - 1
                runs.append(one_run(server, n, Path(tmp), args.profile if last else None))
                floor_s, results = runs[-1]
                print(f"run {n + 1}: floor {floor_s:.2f} s, " + ", ".join(
                    f"{kind} {step} {r['seconds']:.2f} s"
                    + (f" (validated {r['validated']:.2f} s)" if r["validated"] else "")
                    for kind, steps in results.items() for step, r in steps.items()
                ), flush=True)  # fmt: skip
        report(runs)


def report(runs: list[tuple[float, Run]]) -> None:
    floors = [f for f, _ in runs]
    print(
        f"\nfloor (csv parse + COPY into unindexed tables): median {median(floors):.2f} s"
        f" of {len(runs)} runs ({', '.join(f'{f:.2f}' for f in floors)})\n"
    )
    header = f"{'step':22} {'database':10} {'median':>8} {'x floor':>8} {'target':>7}"
    print(header + f" {'peak RSS':>9}  verdict")
    for step in STEPS:
        for kind in DATABASES:
            seconds = [r[kind][step]["seconds"] for _, r in runs]
            ratio = median([r[kind][step]["seconds"] / f for f, r in runs])
            rss = max(r[kind][step]["rss_mb"] for _, r in runs)
            target = TARGETS[kind][step]
            outcomes = "/".join(sorted({r[kind][step]["outcome"] for _, r in runs}))
            verdict = "ok" if ratio <= target and rss <= RSS_TARGET_MB else "MISSED"
            print(
                f"{step:22} {kind:10} {median(seconds):6.2f} s {ratio:7.2f}x {target:6.1f}x"
                f" {rss:6.0f} MB  {verdict} ({outcomes})"
            )


if __name__ == "__main__":
    main()
