"""How fast the Import Manager's pages are for a 100,000-student district, over HTTP.

    .venv/bin/python bench/web_pages.py [--students 100000] [--repeat 20] [--only sqlite]

For PostgreSQL and for SQLite: a tenant gets a district (bench/district.py) as one applied
import and a changed upload with a row error as a paused one; the real `rosterdrop serve`
runs as a subprocess; a district administrator signs in over HTTP; every page in PAGES is
fetched once to warm up, then `--repeat` times, and min/median/max ms are printed with the
median's ratio to the target (issue 11: well under 200 ms).

To time another page, add a line to PAGES: a label and a function of the Pages found (ids of
the imports and of a student, a section, a school) that gives its path. The change browser's
lists are found from the imports' counts (CHANGE_PAGES: every entity and kind with records,
its first, a middle and its last page), and the operator's pages are read signed in as an
operator (OPERATOR_PAGES). `--pages WORD` times only the pages whose label has WORD.
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
from daemon.store.imports import get as get_import  # noqa: E402
from daemon.store.tables import roster_tables  # noqa: E402
from tests.support.postgres import create_database, postgres_server  # noqa: E402

TARGET_MS = 200.0
PASSWORD = "bench-web-password"
TENANT, ADMIN, OPERATOR = "bench", "bench-admin", "bench-operator"
CHANGES_PAGE_SIZE = 50  # the change browser's (daemon/web/views/changes.py)


@dataclass
class Found:
    """What the page paths are made of, read from the database once the imports ran."""

    applied: int
    paused: int
    student: tuple[str, str]
    section: tuple[str, str]
    school: str
    paused_lists: dict[tuple[str, str], int]  # (entity, kind) -> records, from the counts
    applied_lists: dict[tuple[str, str], int]
    students_page_50: str = ""  # followed through the "Next" links before timing
    changes_page_50: str = ""  # the applied import's largest list, likewise


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
    ("import: problems by file", lambda f: f"/imports/{f.paused}?file=students.csv"),
    ("import: problems by code", lambda f: f"/imports/{f.paused}?code=unknown_school"),
    ("approve confirmation", lambda f: f"/imports/{f.paused}/approve"),
    ("setup", lambda f: f"/tenants/{TENANT}/setup"),
    ("choose files", lambda f: f"/tenants/{TENANT}/upload"),
    ("changes (default list)", lambda f: f"/imports/{f.paused}/changes"),
    ("changes: search 'smi'", lambda f: _look(f.paused, "students", "smi")),
    ("changes: search enrollments", lambda f: _look(f.paused, "enrollments", f.student[1][:4])),
    ("applied changes: search 'smi'", lambda f: _look(f.applied, "students", "smi")),
    ("applied changes: search enrollments", lambda f: _look(f.applied, "enrollments", "smi")),
    ("applied changes: page 50", lambda f: f.changes_page_50),
    ("api: changes", lambda f: f"/api/v1/imports/{f.paused}/changes"),
    ("api: changes, last page", lambda f: _changes(f.applied, _LINKS, f.applied_lists, -1, "api")),
]

# The operator's pages, read signed in as the operator.
OPERATOR_PAGES: list[tuple[str, Callable[[Found], str]]] = [
    ("operator: tenants", lambda f: "/operator/tenants"),
    ("operator: users", lambda f: "/operator/users"),
    ("operator: outbox", lambda f: "/operator/outbox"),
    ("operator: audit", lambda f: "/operator/audit"),
]

# The CSV downloads: time to the first byte and to the whole list.
CSV_PAGES: list[tuple[str, Callable[[Found], str]]] = [
    ("csv: paused, largest", lambda f: _csv(f.paused, _largest(f.paused_lists))),
    ("csv: applied, students", lambda f: _csv(f.applied, ("students", "add"))),
]


def _largest(lists: dict[tuple[str, str], int]) -> tuple[str, str]:
    return max(lists, key=lambda k: lists[k])


_LINKS = ("enrollments", "add")  # a first import's largest list: 700,000 at 100,000 students


def _look(import_id: int, entity: str, q: str) -> str:
    return f"/imports/{import_id}/changes?entity={entity}&kind=add&q={_q(q)}"


def _csv(import_id: int, entity_kind: tuple[str, str]) -> str:
    entity, kind = entity_kind
    return f"/imports/{import_id}/changes.csv?entity={entity}&kind={kind}"


def _changes(
    import_id: int, entity_kind: tuple[str, str], lists: dict[tuple[str, str], int], page: int,
    where: str = "",
) -> str:  # fmt: skip
    """A change list's page (1 the first, 0 the middle, -1 the last) by its number; `where`
    "api" for the JSON."""
    pages = max(1, -(-lists.get(entity_kind, 0) // CHANGES_PAGE_SIZE))
    number = {1: 1, 0: (pages + 1) // 2, -1: pages}[page]
    entity, kind = entity_kind
    query = urllib.parse.urlencode({"entity": entity, "kind": kind, "page": number})
    return f"{'/api/v1' if where == 'api' else ''}/imports/{import_id}/changes?{query}"


def change_pages(found: Found) -> list[tuple[str, Callable[[Found], str]]]:
    """Every list of both imports: its first, middle and last page."""
    pages: list[tuple[str, Callable[[Found], str]]] = []
    for which, import_id, lists in (
        ("paused", found.paused, found.paused_lists),
        ("applied", found.applied, found.applied_lists),
    ):
        for (entity, kind), count in sorted(lists.items()):
            for page, name in ((1, "first"), (0, "middle"), (-1, "last")):
                if page != 1 and count <= CHANGES_PAGE_SIZE:
                    continue
                at = (import_id, (entity, kind), lists, page)
                pages.append((f"{which} {entity} {kind} {name}", lambda f, a=at: _changes(*a)))
    return pages


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
        users.add(
            conn, OPERATOR, tenant_id=None, email=None,
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
        lists = [_lists(get_import(conn, i).counts or {}) for i in ids]
    db.close()
    return Found(
        ids[0], ids[1], tuple(student), tuple(section), student[0],  # type: ignore[arg-type]
        paused_lists=lists[1], applied_lists=lists[0],
    )  # fmt: skip


_COUNTED = {"add": "added", "update": "updated", "reactivate": "reactivated",
            "deactivate": "deactivated", "held": "held"}  # fmt: skip


def _lists(counts: dict[str, dict[str, int]]) -> dict[tuple[str, str], int]:
    return {
        (entity, kind): figures[counted]
        for entity, figures in counts.items()
        for kind, counted in _COUNTED.items()
        if figures.get(counted)
    }


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

    def sign_in(self, name: str = ADMIN) -> None:
        token = re.search(r'name="csrf_token" value="([^"]+)"', self.get("/signin"))
        assert token, "no CSRF token on the sign-in form"
        form = {"csrf_token": token.group(1), "username": name, "password": PASSWORD}
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

    def timed_download(self, path: str) -> tuple[float, float, int]:
        """ms to the first byte of the body, ms to its end, and its size."""
        started = time.perf_counter()
        with self.opener.open(self.base + path, timeout=300) as response:
            size = len(response.read(1))
            first = time.perf_counter()
            while chunk := response.read(1 << 16):
                size += len(chunk)
        return (first - started) * 1000, (time.perf_counter() - started) * 1000, size


def _line(kind: str, label: str, times: list[float]) -> str:
    median = statistics.median(times)
    return (
        f"{kind:10} {label:44} {min(times):7.1f} {median:7.1f} {max(times):7.1f}"
        f"   {median / TARGET_MS:5.2f}"
    )


def measure(
    kind: str, url: str, work: Path, base: Path, changed: Path, repeat: int, only: str
) -> list[str]:
    env = environment(work / f"data-{kind}", url)
    print(f"{kind}: preparing the district")
    found = prepare(env, base, changed)
    lines = []
    with serve(env, work / f"serve-{kind}.log") as port:
        browser, operator = Browser(f"http://127.0.0.1:{port}"), Browser(f"http://127.0.0.1:{port}")
        browser.sign_in()
        operator.sign_in(OPERATOR)
        found.students_page_50 = browser.follow_next("/roster/students", 50)
        largest = _largest(found.applied_lists)
        found.changes_page_50 = browser.follow_next(
            _changes(found.applied, largest, found.applied_lists, 1), 50
        )
        timed = [(browser, p) for p in PAGES + change_pages(found)]
        timed += [(operator, p) for p in OPERATOR_PAGES]
        for client, (label, path_of) in timed:
            if only not in label:
                continue
            path = path_of(found)
            client.timed(path)  # warm-up: the first view of a page parses its template
            lines.append(_line(kind, label, [client.timed(path) for _ in range(repeat)]))
            print(lines[-1], flush=True)
        for label, path_of in CSV_PAGES:
            if only not in label:
                continue
            path = path_of(found)
            first, whole, size = zip(*(browser.timed_download(path) for _ in range(3)), strict=True)
            lines.append(_line(kind, f"{label}, first byte", list(first)))
            lines.append(_line(kind, f"{label}, whole ({size[0]:,} B)", list(whole)))
            print("\n".join(lines[-2:]), flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--only", choices=("postgresql", "sqlite"))
    parser.add_argument("--pages", default="", help="time only the pages whose label has this")
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
                lines += measure(kind, url, work, base, changed, args.repeat, args.pages)
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"\nload average at the end (this machine's {os.cpu_count()} cores): {load}")
        print(f"\n{'database':10} {'page':44} {'min ms':>7} {'median':>7} {'max':>7}   x 200 ms")
        print("\n".join(lines))


if __name__ == "__main__":
    main()
