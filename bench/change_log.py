"""What the change log (issue 14, undo an import) costs, and what an undo takes.

On PostgreSQL and SQLite, for a district of --students (default 100,000): the first import,
then a re-import with about 1 % of the rows changed, then the undo of that import, then the
undo of the undo (a redo). For each: the time of the whole import, the time spent writing its
change log (`kept_changes.keep`, the INSERT … SELECT before the apply; an undo's own:
`Undo.keep`), the rows it wrote to `import_changes`, and their bytes on disk per row
(PostgreSQL: pg_total_relation_size, its index included; SQLite: dbstat's pages).

    .venv/bin/python bench/change_log.py [--students 100000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.district import generate  # noqa: E402
from tests.support.postgres import create_database, postgres_server  # noqa: E402


class Timed:
    """Wraps a function, adding up the time spent in it."""

    def __init__(self, owner: Any, name: str) -> None:
        self.owner, self.name, self.seconds = owner, name, 0.0
        self.inner: Callable[..., Any] = getattr(owner, name)
        setattr(owner, name, self)

    def __get__(self, instance: Any, cls: Any = None) -> Any:
        return self if instance is None else lambda *a, **k: self(instance, *a, **k)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.inner(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def log_size(conn: Any) -> tuple[int, int]:
    """Rows of import_changes, and the bytes it takes on disk."""
    import sqlalchemy as sa

    rows = conn.execute(sa.text("SELECT count(*) FROM import_changes")).scalar_one()
    if conn.dialect.name == "postgresql":
        size = sa.text("SELECT pg_total_relation_size('import_changes')")
    else:
        size = sa.text("SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = 'import_changes'")
    return int(rows), int(conn.execute(size).scalar_one())


def run(
    url: str, data_dir: Path, base: Path, changed: Path
) -> list[tuple[str, float, float, int, int]]:
    from daemon import undo
    from daemon.clever.files import find_files
    from daemon.config import load_settings
    from daemon.pipeline import Pipeline
    from daemon.store import changelog, kept_changes, tenants
    from daemon.store.database import Database

    settings = load_settings(
        None, {"ROSTERDROP_DATA_DIR": str(data_dir), "ROSTERDROP_DATABASE_URL": url}
    )
    db = Database(url, lock_dir=settings.paths.locks)
    db.upgrade()
    with db.write() as conn:
        tenant = tenants.add(conn, "bench", emails=["b@example.org"], now=datetime.now(UTC),
                             settings=None)  # fmt: skip
        tenant = tenants.update(
            conn, "bench",
            settings=tenant.settings.updated(max_deactivate_percent=100, max_update_percent=100),
        )  # fmt: skip
    pipeline = Pipeline(db, settings.paths, settings.smtp)
    keep = Timed(kept_changes, "keep")
    undo_keep = Timed(changelog.Undo, "keep")

    def upload(folder: Path) -> Callable[[int], int]:
        return lambda _: pipeline.receive(tenant, find_files(folder), source="cli", move=False)

    def undoing(last: int) -> int:
        return undo.ask(pipeline, last, back_to=False)

    steps = [
        ("first import", upload(base)),
        ("1% changed", upload(changed)),
        ("undo of the 1%", undoing),
        ("redo (undo of the undo)", undoing),
    ]
    out = []
    last = 0
    for name, receive in steps:
        with db.read() as conn:
            rows_before, bytes_before = log_size(conn)
        keep.seconds = undo_keep.seconds = 0.0
        import_id = receive(last)
        start = time.perf_counter()
        report = pipeline.run(import_id)
        seconds = time.perf_counter() - start
        assert report.state.value == "imported", (name, report.fatal_reason)
        with db.read() as conn:
            rows_after, bytes_after = log_size(conn)
        out.append((name, seconds, keep.seconds + undo_keep.seconds, rows_after - rows_before,
                    bytes_after - bytes_before))  # fmt: skip
        last = import_id
    db.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rosterdrop-bench-") as tmp:
        base, changed = Path(tmp) / "district", Path(tmp) / "district-changed"
        counts = generate(base, args.students)
        generate(changed, args.students, change=0.01)
        print(f"district: {counts}")
        with postgres_server(fsync=True) as server:
            for kind in ("postgresql", "sqlite"):
                data_dir = Path(tmp) / f"data-{kind}"
                url = (
                    create_database(server, "roster")
                    if kind == "postgresql"
                    else f"sqlite:///{data_dir}/rosterdrop.db"
                )
                print(f"\n{kind}")
                print(f"{'step':26} {'import':>9} {'change log':>11} {'rows':>8} {'bytes/row':>10}")
                for name, seconds, kept, rows, size in run(url, data_dir, base, changed):
                    per_row = f"{size / rows:10.0f}" if rows else f"{'-':>10}"
                    print(f"{name:26} {seconds:7.2f} s {kept:9.3f} s {rows:8,} {per_row}")


if __name__ == "__main__":
    main()
