#!/usr/bin/env python3
"""How long the operator's pages and a Setup page take over a large installation.

    .venv/bin/python bench/operator_pages.py [--tenants 2000] [--imports 20] [--audit 200000]

Fills a SQLite database (the embedded default) in a temporary data directory with `--tenants`
tenants of `--imports` imports each (a tenth of the tenants with one paused), as many district
administrators, `--audit` audit entries and a failed email per tenant; then serves the Import
Manager in this process (aiohttp on loopback) and signs in as an operator. Each page is asked
for 20 times over HTTP; the median and the slowest are printed, in milliseconds. Every page is
keyset-paged, so its time should not grow with the installation.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from daemon.config import load_settings  # noqa: E402
from daemon.passwords import hash_password  # noqa: E402
from daemon.pipeline import Pipeline  # noqa: E402
from daemon.roster.tenant import TenantSettings  # noqa: E402
from daemon.store.database import Database  # noqa: E402
from daemon.store.tables import audit_log, imports, outbox, tenants, users  # noqa: E402
from daemon.web.app import create_app  # noqa: E402
from daemon.web.context import SftpDetails  # noqa: E402
from daemon.web.server import WebServer  # noqa: E402

PASSWORD = "bench-operator-password"
NOW = datetime(2026, 9, 7, 6, 0, tzinfo=UTC)
TIMES = 20


def fill(db: Database, count: int, per_tenant: int, audit: int) -> None:
    settings = TenantSettings().as_dict()
    with db.write() as conn:
        conn.execute(tenants.insert(), [
            {"name": f"district{n:05d}", "created_at": NOW, "disabled": n % 50 == 0,
             "authorized_keys": "", "emails": [f"it@d{n}.example.org"], "settings": settings}
            for n in range(count)
        ])  # fmt: skip
        conn.execute(imports.insert(), [
            {"tenant_id": t + 1, "state": "paused" if t % 10 == 0 and i == per_tenant - 1
             else "imported", "source": "sftp", "received_at": NOW + timedelta(hours=i),
             "updated_at": NOW, "files": {}, "attempts": 1}
            for t in range(count) for i in range(per_tenant)
        ])  # fmt: skip
        conn.execute(users.insert(), [
            {"name": f"admin{n:05d}", "tenant_id": n + 1, "operator": False, "disabled": False,
             "created_at": NOW, "password_hash": None}
            for n in range(count)
        ])  # fmt: skip
        conn.execute(users.insert().values(
            name="ops", operator=True, disabled=False, created_at=NOW,
            password_hash=hash_password(PASSWORD),
        ))  # fmt: skip
        conn.execute(audit_log.insert(), [
            {"at": NOW + timedelta(seconds=n), "user_name": f"admin{n % count:05d}",
             "tenant_id": n % count + 1, "action": ("emails", "thresholds", "grade_rules")[n % 3],
             "detail": f"change {n}", "address": "127.0.0.1"}
            for n in range(audit)
        ])  # fmt: skip
        conn.execute(outbox.insert(), [
            {"tenant_id": n + 1, "kind": "import_results", "subject": f"Import Results #{n}",
             "recipients": [], "message": b"Subject: x\r\n\r\nx\r\n", "state": "failed",
             "created_at": NOW, "attempts": 3, "next_attempt_at": NOW, "last_error": "550"}
            for n in range(count)
        ])  # fmt: skip


async def measure(db: Database, root: Path, count: int) -> None:
    settings = load_settings(None, {"ROSTERDROP_DATA_DIR": str(root)})
    pipeline = Pipeline(db, settings.paths, settings.smtp)
    sftp = SftpDetails("sftp.example.org", lambda: 22, settings.paths.host_keys, str.strip)
    ctx = WebServer(settings.web, root, db, pipeline, sftp=sftp).context()
    async with TestClient(TestServer(create_app(ctx))) as client:
        form = await (await client.get("/signin")).text()
        token = form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        signed = await client.post("/signin", data={
            "csrf_token": token, "username": "ops", "password": PASSWORD,
        }, allow_redirects=False)  # fmt: skip
        assert signed.status == 303, signed.status
        middle = f"district{count // 2:05d}"
        for path in (
            "/operator/tenants", f"/operator/tenants?after={middle}", "/operator/users",
            "/operator/outbox", "/operator/audit", f"/operator/audit?tenant={middle}",
            "/operator/audit?action=grade_rules&before=100000", "/operator/audit?user=nobody",
            f"/tenants/{middle}/setup",
        ):  # fmt: skip
            took = []
            for _ in range(TIMES):
                start = time.perf_counter()
                response = await client.get(path)
                await response.read()
                took.append((time.perf_counter() - start) * 1000)
                assert response.status == 200, (path, response.status)
            median, slowest = statistics.median(took), max(took)
            print(f"{path:55} median {median:6.1f} ms, slowest {slowest:6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=2000)
    parser.add_argument("--imports", type=int, default=20)
    parser.add_argument("--audit", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rd-bench-") as tmp:
        root = Path(tmp)
        db = Database(f"sqlite:///{root / 'rosterdrop.db'}", lock_dir=root / "locks")
        db.upgrade()
        start = time.perf_counter()
        fill(db, args.tenants, args.imports, args.audit)
        print(f"filled: {args.tenants} tenants, {args.tenants * args.imports} imports, "
              f"{args.audit} audit entries in {time.perf_counter() - start:.1f} s")  # fmt: skip
        asyncio.run(measure(db, root, args.tenants))
        db.close()


if __name__ == "__main__":
    main()
