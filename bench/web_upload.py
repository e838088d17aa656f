"""Choose Files at district scale: a browser upload checked and processed by `rosterdrop serve`.

    .venv/bin/python bench/web_upload.py [--students 100000]

The real daemon runs as a subprocess on the embedded defaults (SQLite) in a temporary data
directory. A first import (`rosterdrop import`) fills the roster; then a copy with about 1 %
of its rows changed is uploaded through the Import Manager as a browser would (one multipart
POST, streamed from the files), checked (the dry run), and processed. Printed: the upload's
size, how long Check files and Process Import took, the latency of GET /imports sampled all
along (the dry run runs in a process of its own and must not hold the web up), and the
daemon's main process's peak resident memory before and after (the body is streamed to disk,
never held whole).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.district import generate  # noqa: E402
from daemon.config import load_settings  # noqa: E402
from daemon.passwords import hash_password  # noqa: E402
from daemon.store import tenants, users  # noqa: E402
from daemon.store.database import Database  # noqa: E402

PASSWORD = "bench-web-password"
FILES = ("schools.csv", "teachers.csv", "students.csv", "sections.csv", "enrollments.csv")


def environment(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROSTERDROP_")}
    return {
        **env,
        "ROSTERDROP_DATA_DIR": str(data),
        "ROSTERDROP_SFTP_HOST": "127.0.0.1",
        "ROSTERDROP_SFTP_PORT": "0",
        "ROSTERDROP_HTTP_PORT": "0",
        "ROSTERDROP_WEB_PORT": "0",
        "ROSTERDROP_LOG_FORMAT": "json",
    }


def peak_rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]


async def sample(client: aiohttp.ClientSession, url: str, stop: asyncio.Event) -> list[float]:
    took: list[float] = []
    while not stop.is_set():
        start = time.perf_counter()
        async with client.get(url + "/imports") as response:
            await response.read()
        took.append(time.perf_counter() - start)
        await asyncio.sleep(0.05)
    return took


async def drive(url: str, changed: Path) -> dict[str, object]:
    # unsafe: the daemon is at 127.0.0.1, and a cookie jar refuses IP addresses' cookies else.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        page = await (await client.get(url + "/signin")).text()
        form = {"csrf_token": csrf(page), "username": "bench-admin", "password": PASSWORD}
        await client.post(url + "/signin", data=form)
        idle = await sample_for(client, url, 2.0)
        token = csrf(await (await client.get(url + "/tenants/bench/upload")).text())
        stop = asyncio.Event()
        sampler = asyncio.ensure_future(sample(client, url, stop))
        body = aiohttp.FormData()
        body.add_field("csrf_token", token)
        handles = [(changed / name).open("rb") for name in FILES]
        for name, handle in zip(FILES, handles, strict=True):
            body.add_field("files", handle, filename=name, content_type="text/csv")
        start = time.perf_counter()
        async with client.post(url + "/tenants/bench/upload", data=body) as response:
            html = await response.text()
        checked = time.perf_counter() - start
        stop.set()
        during = await sampler
        for handle in handles:
            handle.close()
        if "Process Import</button>" not in html:
            raise SystemExit(f"the check did not answer with a dry run: {html[-2000:]}")
        pending = re.search(r'name="pending" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
        start = time.perf_counter()
        data = {"csrf_token": csrf(html), "pending": pending}
        async with client.post(url + "/tenants/bench/upload/process", data=data) as response:
            landed = str(response.url)
        processed = time.perf_counter() - start
    return {"checked": checked, "processed": processed, "idle": idle, "during": during,
            "landed": landed}  # fmt: skip


async def sample_for(client: aiohttp.ClientSession, url: str, seconds: float) -> list[float]:
    stop = asyncio.Event()
    task = asyncio.ensure_future(sample(client, url, stop))
    await asyncio.sleep(seconds)
    stop.set()
    return await task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rosterdrop-web-bench-") as tmp:
        root = Path(tmp)
        env = environment(root / "data")
        settings = load_settings(None, env)
        db = Database(settings.database_url, lock_dir=settings.paths.locks)
        db.upgrade()
        with db.write() as conn:
            tenant = tenants.add(conn, "bench", emails=["bench@example.org"], now=_now())
            users.add(conn, "bench-admin", tenant_id=tenant.id, email=None,
                      password_hash=hash_password(PASSWORD), now=_now())  # fmt: skip
        db.close()
        generate(root / "first", args.students)
        generate(root / "changed", args.students, change=0.01)
        rosterdrop = [sys.executable, "-m", "daemon"]
        first = root / "first"
        subprocess.run([*rosterdrop, "import", str(first), "--tenant", "bench"], env=env,
                       check=True, capture_output=True)  # fmt: skip
        size = sum((root / "changed" / name).stat().st_size for name in FILES)
        log = (root / "serve.log").open("w")
        daemon = subprocess.Popen([*rosterdrop, "serve"], env=env, stderr=log, stdout=log)
        try:
            url = _web_url(root / "serve.log")
            before = peak_rss_mib(daemon.pid)
            result = asyncio.run(drive(url, root / "changed"))
            after = peak_rss_mib(daemon.pid)
        finally:
            daemon.terminate()
            daemon.wait(60)
    idle, during = result["idle"], result["during"]
    assert isinstance(idle, list)
    assert isinstance(during, list)
    print(f"{args.students:,} students, upload of {size / 1e6:.1f} MB (about 1 % changed)")
    print(f"Check files (upload + dry run): {result['checked']:.2f} s")
    print(f"Process Import (to the import's page, applied): {result['processed']:.2f} s")
    print(f"GET /imports idle: median {statistics.median(idle) * 1000:.1f} ms,"
          f" max {max(idle) * 1000:.1f} ms ({len(idle)} requests)")  # fmt: skip
    print(f"GET /imports during the check: median {statistics.median(during) * 1000:.1f} ms,"
          f" max {max(during) * 1000:.1f} ms ({len(during)} requests)")  # fmt: skip
    print(f"daemon main process peak RSS: {before:.0f} MiB before, {after:.0f} MiB after")
    print(f"landed on {result['landed']}")


def _now() -> object:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def _web_url(log: Path) -> str:
    import json

    for _ in range(600):
        for line in log.read_text().splitlines():
            if '"rosterdrop is ready"' in line:
                return f"http://127.0.0.1:{json.loads(line)['web_port']}"
        time.sleep(0.1)
    raise SystemExit("the daemon did not start: " + log.read_text()[-2000:])


if __name__ == "__main__":
    main()
