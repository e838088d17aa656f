"""The roster pages and /api/v1/roster over a real database of each kind (aiohttp's test
client, real imports): search by id or name, keyset paging at its page sizes, inactive
records on request, teachers in display order, and one tenant never seeing another's."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient, TestServer

from daemon.clever.files import find_files
from daemon.config import Settings
from daemon.passwords import hash_password
from daemon.pipeline import Pipeline
from daemon.sftp import public_key_line
from daemon.store import tenants, users
from daemon.store.database import Database
from daemon.store.roster_reads import LISTED, MAX_RELATED
from daemon.store.tables import roster_tables
from daemon.web.app import create_app
from daemon.web.context import SftpDetails
from daemon.web.server import WebServer
from daemon.web.views.roster import MAX_QUERY_CHARS, ROSTER_API_PAGE_SIZE, ROSTER_PAGE_SIZE
from tests.support.clever import Snapshot

PASSWORD = "a-district-password"
NOW = datetime(2026, 9, 7, 6, 0, tzinfo=UTC)


@dataclass
class Roster:
    client: TestClient
    db: Database
    settings: Settings
    root: Path

    def district(self, tenant: str, snapshot: Snapshot, *, admin: bool = True) -> int:
        """`snapshot` imported for `tenant` (made on first use); returns the import's id."""
        with self.db.write() as conn:
            found = tenants.find(conn, tenant) or tenants.add(conn, tenant, emails=[], now=NOW)
            if admin and users.find(conn, f"{tenant}-admin") is None:
                users.add(
                    conn, f"{tenant}-admin", tenant_id=found.id, email=None,
                    password_hash=hash_password(PASSWORD), now=NOW,
                )  # fmt: skip
        folder = snapshot.write(self.root / f"{tenant}-{len(list(self.root.iterdir()))}")
        pipeline = Pipeline(self.db, self.settings.paths, self.settings.smtp)
        import_id = pipeline.receive(found, find_files(folder), source="cli", move=False)
        pipeline.run(import_id)
        return import_id

    async def sign_in(self, name: str) -> None:
        self.client.session.cookie_jar.clear()
        form = await (await self.client.get("/signin")).text()
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token
        response = await self.client.post(
            "/signin", data={"csrf_token": token.group(1), "username": name, "password": PASSWORD},
            allow_redirects=False,
        )  # fmt: skip
        assert response.status == 303

    async def html(self, path: str) -> str:
        response = await self.client.get(path)
        assert response.status == 200, (path, await response.text())
        return await response.text()

    async def api(self, path: str, status: int = 200) -> Any:
        response = await self.client.get(path)
        assert response.status == status, (path, await response.text())
        return await response.json()


@contextlib.asynccontextmanager
async def roster_web(settings: Settings, db: Database, root: Path) -> AsyncIterator[Roster]:
    pipeline = Pipeline(db, settings.paths, settings.smtp)
    sftp = SftpDetails("sftp.example.org", lambda: 2222, settings.paths.host_keys, public_key_line)
    server = WebServer(settings.web, settings.paths.root, db, pipeline, sftp=sftp)
    async with TestClient(TestServer(create_app(server.context()))) as client:
        yield Roster(client, db, settings, root)


@pytest.fixture
async def web(settings: Settings, db: Database, tmp_path: Path) -> AsyncIterator[Roster]:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    async with roster_web(settings, db, uploads) as made:
        yield made


def people(snapshot: Snapshot, names: list[tuple[str, str, str]]) -> Snapshot:
    """`snapshot` with students (id, first, last) in SCH1, each enrolled in section C1."""
    for student_id, first, last in names:
        snapshot.students[("SCH1", student_id)] = (first, last, "", student_id.lower(), "03")
        snapshot.enrollments.add(("SCH1", "C1", student_id))
    return snapshot


def school(students: int = 0) -> Snapshot:
    snap = Snapshot(schools={"SCH1": "Lincoln"})
    snap.teachers[("SCH1", "T1")] = ("Ada", "Lovelace", "ada@d.org")
    snap.sections[("SCH1", "C1")] = (("T1",), "Math", "2026-08-15", "2027-06-10")
    return people(snap, [(f"S{n:03d}", "Kid", f"No{n:03d}") for n in range(1, students + 1)])


def ids_of(html: str) -> list[str]:
    """The student ids listed on a page, in order."""
    return re.findall(r'<td class="mono">([^<]+)</td>', html)


def next_link(html: str) -> str | None:
    found = re.search(r'<a href="([^"]+)" rel="next">', html)
    return found.group(1).replace("&amp;", "&") if found else None


async def test_search_matches_an_id_exactly_and_names_by_their_beginning(web: Roster) -> None:
    snap = people(
        school(),
        [("S1", "Ann", "Smith"), ("S2", "Bob", "smithers"), ("S3", "Cy", "Osmith"),
         ("S10", "Smitty", "Zed"), ("X9", "Dee", "O'Brien")],
    )  # fmt: skip
    web.district("acme", snap)
    await web.sign_in("acme-admin")

    async def found(q: str) -> list[str]:
        page = await web.api(f"/api/v1/roster/students?q={q}")
        return [r["student_id"] for r in page["records"]]

    # By last name, then first name, folded: Smith and smithers start with "SMI", and so does
    # Smitty's first name; "Osmith" contains it but does not start with it.
    assert await found("SMI") == ["S1", "S2", "S10"]
    assert await found("s1") == ["S1"]  # an id: exactly (any case), not S10 by its beginning
    assert await found("o'b") == ["X9"]
    assert await found("Smith") == ["S1", "S2"]  # Smitty is not a Smith
    assert await found("smithx") == []
    html = await web.html("/roster/students?q=smithers")
    assert ids_of(html) == ["S2"]
    assert "Nothing matches" in await web.html("/roster/students?q=nobody")


async def test_sections_and_enrollments_are_found_by_id_and_course(web: Roster) -> None:
    snap = people(school(), [("S1", "Ann", "Lee"), ("S2", "Bob", "Kim")])
    snap.sections[("SCH1", "C2")] = (("T1",), "Biology", "", "")
    snap.enrollments.add(("SCH1", "C2", "S2"))
    web.district("acme", snap)
    await web.sign_in("acme-admin")
    sections = await web.api("/api/v1/roster/sections?q=bio")
    assert [r["section_id"] for r in sections["records"]] == ["C2"]
    by_student = await web.api("/api/v1/roster/enrollments?q=s2")
    assert {(r["section_id"], r["student_id"]) for r in by_student["records"]} == {
        ("C1", "S2"),
        ("C2", "S2"),
    }
    by_section = await web.api("/api/v1/roster/enrollments?q=C2")
    assert [(r["section_id"], r["student_id"]) for r in by_section["records"]] == [("C2", "S2")]


async def test_pages_follow_each_other_at_the_page_sizes(web: Roster) -> None:
    # Exactly two HTML pages: the second says there is no third; one API page, and no next.
    size, api_size = ROSTER_PAGE_SIZE, ROSTER_API_PAGE_SIZE
    assert api_size == 2 * size
    web.district("acme", school(api_size))
    await web.sign_in("acme-admin")
    first = await web.html("/roster/students")
    second = await web.html(next_link(first) or "no next page")
    assert len(ids_of(first)) == len(ids_of(second)) == size
    assert next_link(second) is None
    everyone = [f"S{n:03d}" for n in range(1, api_size + 1)]
    assert ids_of(first) + ids_of(second) == everyone  # by name: No001, No002, …
    page = await web.api("/api/v1/roster/students")
    assert len(page["records"]) == api_size
    assert page["next_page"] is None

    web.district("acme", school(api_size + 1))  # one more
    third = await web.html(next_link(await web.html(next_link(first) or "")) or "no third page")
    assert ids_of(third) == [f"S{api_size + 1:03d}"]
    page = await web.api("/api/v1/roster/students")
    assert len(page["records"]) == api_size
    rest = await web.api(f"/api/v1/roster/students?page={page['next_page']}")
    assert [r["student_id"] for r in rest["records"]] == [f"S{api_size + 1:03d}"]
    assert rest["next_page"] is None


async def test_inactive_records_show_only_on_request(web: Roster) -> None:
    snap = people(school(), [("S1", "Ann", "Lee"), ("S2", "Bob", "Kim")])
    first = web.district("acme", snap)
    del snap.students[("SCH1", "S2")]
    snap.enrollments.discard(("SCH1", "C1", "S2"))
    second = web.district("acme", snap)
    await web.sign_in("acme-admin")
    assert ids_of(await web.html("/roster/students")) == ["S1"]
    shown = await web.html("/roster/students?inactive=1")
    assert ids_of(shown) == ["S2", "S1"]  # Kim before Lee
    assert "inactive" in shown
    page = await web.api("/api/v1/roster/students?inactive=1")
    assert {r["student_id"]: r["active"] for r in page["records"]} == {"S1": True, "S2": False}
    record = await web.html("/roster/students/SCH1/S2")
    assert f'href="/imports/{first}"' in record  # created by the first import
    assert re.search(rf'id="changed-import">import <a href="/imports/{second}"', record)
    overview = await web.html("/roster")
    assert re.search(r"Students</a></th>\s*<td class=\"num\">1</td>", overview)
    assert counted(web.db, "acme") == shown_counts(overview)

    people(snap, [("S2", "Bob", "Kim"), ("S3", "Cy", "Ng")])  # S2 comes back, S3 is new
    web.district("acme", snap)
    overview = await web.html("/roster")
    assert counted(web.db, "acme") == shown_counts(overview)
    assert shown_counts(overview)["Students"] == (3, 0)


def counted(db: Database, tenant: str) -> dict[str, tuple[int, int]]:
    """(active, inactive) per list, counted row by row, to hold the overview's figures to."""
    with db.read() as conn:
        tenant_id = tenants.get(conn, tenant).id
        found = {}
        for entity in LISTED:
            rows = (
                conn.execute(
                    sa.select(roster_tables[entity].c.active).where(
                        roster_tables[entity].c.tenant_id == tenant_id
                    )
                )
                .scalars()
                .all()
            )
            found[entity.title()] = (sum(rows), len(rows) - sum(rows))
    return found


def shown_counts(html: str) -> dict[str, tuple[int, int]]:
    cells = re.findall(
        r'>(\w+)</a></th>\s*<td class="num">([\d,]+)</td>\s*<td class="num">(?:<a [^>]*>)?([\d,]+)',
        html,
    )
    return {name: (int(a.replace(",", "")), int(i.replace(",", ""))) for name, a, i in cells}


async def test_a_sections_teachers_are_in_display_order(web: Roster) -> None:
    snap = school()
    snap.teachers[("SCH1", "T2")] = ("Émile", "Zola", "emile@d.org")
    snap.teachers[("SCH1", "T3")] = ("Rosa", "de la Cruz", "rosa@d.org")
    snap.teachers[("SCH1", "T4")] = ("Ana", "Álvarez", "ana@d.org")
    snap.sections[("SCH1", "C1")] = (("T2", "T3", "T1", "T4"), "Math", "", "")
    web.district("acme", people(snap, [("S1", "Ann", "Lee")]))
    await web.sign_in("acme-admin")
    page = await web.api("/api/v1/roster/sections")
    # The primary teacher first, then by last name ignoring case and accents.
    assert [t["teacher_id"] for t in page["records"][0]["teachers"]] == ["T2", "T4", "T3", "T1"]
    html = await web.html("/roster/sections/SCH1/C1")
    teachers = html[html.index('<ol class="teachers">') :]
    assert teachers.index("Zola") < teachers.index("Álvarez") < teachers.index("de la Cruz")
    assert teachers.index("de la Cruz") < teachers.index("Lovelace")


async def test_another_tenants_roster_is_not_found(web: Roster) -> None:
    web.district("north", people(school(), [("N1", "Nora", "North")]))
    web.district("south", people(school(), [("X1", "Sam", "South")]))
    assert (await web.client.get("/api/v1/roster/students")).status == 401  # signed out
    signed_out = await web.client.get("/roster/students", allow_redirects=False)
    assert signed_out.status == 303
    await web.sign_in("south-admin")
    for path in (
        "/roster/students/SCH1/N1",
        "/roster?tenant=north",
        "/roster/students?tenant=north",
        "/api/v1/roster/students?tenant=north",
        "/roster/sections/SCH1/C1?tenant=north",
    ):
        assert (await web.client.get(path)).status == 404, path
    listed = await web.api("/api/v1/roster/students?q=n")
    assert listed["tenant"] == "south"
    assert listed["records"] == []

    with web.db.write() as conn:
        users.add(
            conn, "op", tenant_id=None, email=None, password_hash=hash_password(PASSWORD), now=NOW
        )
    await web.sign_in("op")
    refused = await web.api("/api/v1/roster/students", status=400)
    assert refused["error"].startswith("tenant:")
    assert "north" in await web.html("/roster")  # the operator picks a tenant
    north = await web.api("/api/v1/roster/students?tenant=north")
    assert [r["student_id"] for r in north["records"]] == ["N1"]
    assert "Nora" in await web.html("/roster/students/SCH1/N1?tenant=north")
    assert (await web.client.get("/roster/students/SCH1/N1?tenant=south")).status == 404


async def test_a_search_term_and_a_cursor_are_bounded(web: Roster) -> None:
    web.district("acme", school(1))
    await web.sign_in("acme-admin")
    await web.api("/api/v1/roster/students?q=" + "a" * MAX_QUERY_CHARS)
    refused = await web.api("/api/v1/roster/students?q=" + "a" * (MAX_QUERY_CHARS + 1), 400)
    assert refused["error"] == f"q: a search is at most {MAX_QUERY_CHARS} characters, not 256."
    first = await web.api("/api/v1/roster/students")
    for cursor in ("not-a-cursor", "WyJhIl0", "x" * 5000):  # WyJhIl0: ["a"], one value short
        # The page says so; the API, as for its other paging parameters, starts over.
        response = await web.client.get(f"/roster/students?page={cursor}")
        assert response.status == 400
        assert "page: not a page of this list" in await response.text()
        assert await web.api(f"/api/v1/roster/students?page={cursor}") == first
    assert (await web.client.get("/roster/nothing")).status == 404
    # A NUL (which PostgreSQL refuses in a query) finds nothing, on either database.
    for entity in ("students", "sections", "enrollments"):
        found = await web.api(f"/api/v1/roster/{entity}?q=a%00b")
        assert found["records"] == [], entity


async def test_a_sections_page_shows_at_most_its_bound_of_students(web: Roster) -> None:
    web.district("acme", school(MAX_RELATED))
    await web.sign_in("acme-admin")
    html = await web.html("/roster/sections/SCH1/C1")
    assert html.count('href="/roster/students/SCH1/') == MAX_RELATED
    assert 'id="more-students"' not in html  # all of them: nothing left out to say
    web.district("acme", school(MAX_RELATED + 1))
    html = await web.html("/roster/sections/SCH1/C1")
    assert html.count('href="/roster/students/SCH1/') == MAX_RELATED
    assert f"The first {MAX_RELATED} are shown." in html
