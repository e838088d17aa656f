"""How fast the Import Manager's pages are for a 100,000-student district, over HTTP.

    .venv/bin/python bench/web_pages.py [--students 100000] [--repeat 20] [--only sqlite]

For PostgreSQL and for SQLite: a tenant gets a district (bench/district.py) as one applied
import and a changed upload with a row error as a paused one; the real `rosterdrop serve`
runs as a subprocess; a district administrator signs in over HTTP; every page in PAGES is
fetched once to warm up, then `--repeat` times, and min/median/max ms are printed with the
median's ratio to the target (issue 11: well under 200 ms).

To time another page, add a line to PAGES: a label and a function of the Pages found (ids of
the imports and of a student, a section, a school) that gives its path.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.district import generate  # noqa: E402
from daemon.clever.files import find_files  # noqa: E402
from daemon.config import load_settings  # noqa: E402
from daemon.passwords import hash_password  # noqa: E402
from daemon.pipeline import Pipeline  # noqa: E402
from daemon.store import tenants, users  # noqa: E402
from daemon.store.database import Database  # noqa: E402
from daemon.store.tables import roster_tables  # noqa: E402
from tests.support.postgres import create_database, postgres_server  # noqa: E402

TARGET_MS = 200.0
PASSWORD = "bench-web-password"
TENANT, ADMIN = "bench", "bench-admin"


@dataclass
class Found:
    """What the page paths are made of, read from the database once the imports ran."""

    applied: int
    paused: int
    student: tuple[str, str]
    section: tuple[str, str]
    school: str
    students_page_50: str = ""  # followed through the "Next" links before timing


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


# label -> path. Add a page here to time it.
PAGES: list[tuple[str, Callable[[Found], str]]] = [
    ("imports list", lambda f: "/imports"),
    ("an import (applied)", lambda f: f"/imports/{f.applied}"),
    ("an import (paused)", lambda f: f"/imports/{f.paused}"),
    ("roster overview", lambda f: "/roster"),
    ("schools", lambda f: "/roster/schools"),
    ("students", lambda f: "/roster/students"),
    ("teachers", lambda f: "/roster/teachers"),
    ("sections", lambda f: "/roster/sections"),
    ("enrollments", lambda f: "/roster/enrollments"),
    ("students, inactive too", lambda f: "/roster/students?inactive=1"),
    ("search students 'smi'", lambda f: "/roster/students?q=smi"),
    ("search students 'ava'", lambda f: "/roster/students?q=ava"),
    ("search students by id", lambda f: f"/roster/students?q={_q(f.student[1].lower())}"),
    ("search enrollments by id", lambda f: f"/roster/enrollments?q={_q(f.student[1])}"),
    ("search sections 'bio'", lambda f: "/roster/sections?q=bio"),
    ("a student", lambda f: f"/roster/students/{_q(f.student[0])}/{_q(f.student[1])}"),
    ("a section", lambda f: f"/roster/sections/{_q(f.section[0])}/{_q(f.section[1])}"),
    ("a school", lambda f: f"/roster/schools/{_q(f.school)}"),
    ("page 50 of students", lambda f: f.students_page_50),
    ("api: imports", lambda f: "/api/v1/imports"),
    ("api: an import", lambda f: f"/api/v1/imports/{f.paused}"),
    ("api: students", lambda f: "/api/v1/roster/students"),
    ("api: search students", lambda f: "/api/v1/roster/students?q=smi"),
    ("api: sections", lambda f: "/api/v1/roster/sections"),
    ("api: enrollments", lambda f: "/api/v1/roster/enrollments"),
]


def environment(data: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROSTERDROP_")}
    return {
        **env,
        "ROSTERDROP_DATA_DIR": str(data),
        "ROSTERDROP_DATABASE_URL": url,
        "ROSTERDROP_SFTP_HOST": "127.0.0.1",
        "ROSTERDROP_SFTP_PORT": "0",
        "ROSTERDROP_HTTP_PORT": "0",
        "ROSTERDROP_WEB_PORT": "0",
        "ROSTERDROP_LOG_FORMAT": "json",
    }


def prepare(env: dict[str, str], base: Path, changed: Path) -> Found:
    """The tenant, its administrator, an applied import and a paused one (untimed)."""
    settings = load_settings(None, env)
    db = Database(settings.database_url, lock_dir=settings.paths.locks)
    db.upgrade()
    now = datetime.now(UTC)
    with db.write() as conn:
        tenant = tenants.add(conn, TENANT, emails=["bench@example.org"], now=now)
        users.add(
            conn, ADMIN, tenant_id=tenant.id, email=None,
            password_hash=hash_password(PASSWORD), now=now,
        )  # fmt: skip
    pipeline = Pipeline(db, settings.paths, settings.smtp)
    ids = []
    for folder in (base, changed):
        started = time.perf_counter()
        import_id = pipeline.receive(tenant, find_files(folder), source="cli", move=False)
        report = pipeline.run(import_id)
        seconds = time.perf_counter() - started
        print(f"  import #{import_id}: {report.state.value} in {seconds:.1f} s")
        ids.append(import_id)
    students, sections = roster_tables["students"], roster_tables["sections"]
    with db.write() as conn:
        student = conn.execute(
            sa.select(students.c.school_id, students.c.student_id)
            .where(students.c.active)
            .order_by(students.c.school_id, students.c.student_id)
            .offset(4321)
            .limit(1)
        ).one()
        section = conn.execute(
            sa.select(sections.c.school_id, sections.c.section_id)
            .where(sections.c.active)
            .order_by(sections.c.school_id, sections.c.section_id)
            .offset(1234)
            .limit(1)
        ).one()
        if db.is_postgres:
            # What autovacuum does within a minute of an import: time the steady state.
            conn.execute(sa.text("ANALYZE"))
    db.close()
    return Found(ids[0], ids[1], tuple(student), tuple(section), student[0])  # type: ignore[arg-type]


def paused_upload(folder: Path, base: Path, students: int) -> None:
    """A day's changes plus a row naming a school not in the upload: a row error, so the
    import pauses for review (by default any row error does)."""
    generate(folder, students, change=0.01, seed=11)
    with (folder / "students.csv").open("a", encoding="utf-8", newline="") as out:
        out.write("NOSCHOOL,S9999999,Nobody,Known,,nobody,05,ST999999999\r\n")


@contextmanager
def serve(env: dict[str, str], log: Path) -> Iterator[int]:
    with log.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "daemon", "serve"], cwd=ROOT, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for line in log.read_text(errors="replace").splitlines():
                if '"rosterdrop is ready"' in line:
                    yield int(json.loads(line)["web_port"])
                    return
            if process.poll() is not None:
                sys.exit(f"the daemon exited:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        sys.exit(f"the daemon was not ready within two minutes:\n{log.read_text()[-3000:]}")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)


class Browser:
    """A signed-in HTTP client (cookies kept), like a person's browser without the drawing."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=60) as response:
            return str(response.read().decode())

    def sign_in(self) -> None:
        token = re.search(r'name="csrf_token" value="([^"]+)"', self.get("/signin"))
        assert token, "no CSRF token on the sign-in form"
        form = {"csrf_token": token.group(1), "username": ADMIN, "password": PASSWORD}
        data = urllib.parse.urlencode(form).encode()
        with self.opener.open(self.base + "/signin", data, timeout=60) as response:
            assert "/signin" not in response.url, "the sign-in was refused"

    def follow_next(self, path: str, pages: int) -> str:
        """The address of page `pages` of a list, reached through its "Next" links."""
        for _ in range(pages - 1):
            found = re.search(r'<a href="([^"]+)" rel="next">', self.get(path))
            assert found, f"{path} has no next page"
            path = found.group(1).replace("&amp;", "&")
        return path

    def timed(self, path: str) -> float:
        started = time.perf_counter()
        self.get(path)
        return (time.perf_counter() - started) * 1000


def measure(kind: str, url: str, work: Path, base: Path, changed: Path, repeat: int) -> list[str]:
    env = environment(work / f"data-{kind}", url)
    print(f"{kind}: preparing the district")
    found = prepare(env, base, changed)
    lines = []
    with serve(env, work / f"serve-{kind}.log") as port:
        browser = Browser(f"http://127.0.0.1:{port}")
        browser.sign_in()
        found.students_page_50 = browser.follow_next("/roster/students", 50)
        for label, path_of in PAGES:
            path = path_of(found)
            browser.timed(path)  # warm-up: the first view of a page parses its template
            times = [browser.timed(path) for _ in range(repeat)]
            median = statistics.median(times)
            lines.append(
                f"{kind:10} {label:28} {min(times):7.1f} {median:7.1f} {max(times):7.1f}"
                f"   {median / TARGET_MS:5.2f}"
            )
            print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--only", choices=("postgresql", "sqlite"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rosterdrop-web-bench-") as tmp:
        work = Path(tmp)
        base, changed = work / "district", work / "district-changed"
        counts = generate(base, args.students)
        paused_upload(changed, base, args.students)
        print(f"district: {counts}")
        lines: list[str] = []
        kinds = [args.only] if args.only else ["postgresql", "sqlite"]
        with postgres_server(fsync=False) as server:
            for kind in kinds:
                url = (
                    create_database(server, "web")
                    if kind == "postgresql"
                    else f"sqlite:///{work}/data-sqlite/rosterdrop.db"
                )
                lines += measure(kind, url, work, base, changed, args.repeat)
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"\nload average at the end (this machine's {os.cpu_count()} cores): {load}")
        print(f"\n{'database':10} {'page':28} {'min ms':>7} {'median':>7} {'max':>7}   x 200 ms")
        print("\n".join(lines))


if __name__ == "__main__":
    main()
