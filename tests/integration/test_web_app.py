"""The Import Manager's application in this process (aiohttp's test client) over a real
database of each kind: every bound it sets, at its edge — sign-in throttling, session
timeouts, page sizes — and what a cookie and a form must carry."""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from daemon.clever.files import find_files
from daemon.config import Settings
from daemon.passwords import hash_password
from daemon.pipeline import Pipeline
from daemon.roster.outcome import ImportState
from daemon.roster.problems import Problem, Severity
from daemon.sftp import public_key_line
from daemon.store import imports, tenants, users
from daemon.store.database import Database
from daemon.web.app import create_app
from daemon.web.context import SftpDetails, WebContext
from daemon.web.server import WebServer
from daemon.web.throttle import SigninThrottle
from daemon.web.views.data import IMPORTS_PAGE_SIZE, MAX_PAUSED_SHOWN, PROBLEMS_PAGE_SIZE
from tests.support.clever import Snapshot, one_class_district

PASSWORD = "a-district-password"
START = datetime(2026, 9, 7, 6, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START
        self.seconds = 1000.0  # the throttle's monotonic clock

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.seconds

    def advance(self, delta: timedelta) -> None:
        self.now += delta
        self.seconds += delta.total_seconds()


@dataclass
class Web:
    client: TestClient
    ctx: WebContext
    db: Database
    clock: Clock

    async def sign_in(self, name: str, password: str = PASSWORD, next: str = "") -> int:
        """A sign-in from a fresh browser (no cookies yet)."""
        self.client.session.cookie_jar.clear()
        form = await self.client.get("/signin")
        token = csrf_of(await form.text())
        response = await self.client.post(
            "/signin",
            data={"csrf_token": token, "username": name, "password": password, "next": next},
            allow_redirects=False,
        )
        return response.status

    async def status(self, path: str) -> int:
        return (await self.client.get(path, allow_redirects=False)).status


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def add_user(db: Database, name: str, tenant: str | None) -> None:
    with db.write() as conn:
        tenant_id = None
        if tenant is not None:
            found = tenants.find(conn, tenant)
            if found is None:
                found = tenants.add(conn, tenant, emails=[], now=START)
            tenant_id = found.id
        users.add(
            conn, name, tenant_id=tenant_id, email=None,
            password_hash=hash_password(PASSWORD), now=START,
        )  # fmt: skip


def add_imports(db: Database, tenant: str, state: ImportState, count: int) -> list[int]:
    with db.write() as conn:
        tenant_id = tenants.get(conn, tenant).id
        made = []
        for _ in range(count):
            import_id = imports.create(conn, tenant_id, source="sftp", files={}, now=START)
            imports.update(conn, import_id, START, state=state)
            made.append(import_id)
    return made


@contextlib.asynccontextmanager
async def web_for(settings: Settings, db: Database, **web: object) -> AsyncIterator[Web]:
    clock = Clock()
    pipeline = Pipeline(db, settings.paths, settings.smtp, clock=clock)
    sftp = SftpDetails("sftp.example.org", lambda: 2222, settings.paths.host_keys, public_key_line)
    server = WebServer(
        dataclasses.replace(settings.web, **web),  # type: ignore[arg-type]
        settings.paths.root, db, pipeline, sftp=sftp,
    )  # fmt: skip
    ctx = server.context()
    ctx.clock = clock
    ctx.throttle = SigninThrottle(ctx.throttle.policy, clock=clock.monotonic)
    async with TestClient(TestServer(create_app(ctx))) as client:
        yield Web(client, ctx, db, clock)


@pytest.fixture
async def web(settings: Settings, db: Database) -> AsyncIterator[Web]:
    async with web_for(settings, db) as made:
        yield made


async def test_failed_sign_ins_lock_out_at_the_limit_until_the_lock_ends(web: Web) -> None:
    add_user(web.db, "admin", "acme")
    limit = web.ctx.settings.signin_max_failures
    lock = timedelta(seconds=web.ctx.settings.signin_lock_seconds)
    for _ in range(limit - 1):
        assert await web.sign_in("admin", "wrong-password") == 401
    assert await web.sign_in("admin") == 303  # one short of the limit: the right one works
    for _ in range(limit):
        assert await web.sign_in("admin", "wrong-password") == 401
    assert await web.sign_in("admin") == 429  # even the right password waits the lock out
    web.clock.advance(lock - timedelta(seconds=1))
    assert await web.sign_in("admin") == 429
    web.clock.advance(timedelta(seconds=1))
    assert await web.sign_in("admin") == 303


async def test_a_session_ends_after_the_idle_timeout(web: Web) -> None:
    add_user(web.db, "admin", "acme")
    idle = timedelta(minutes=web.ctx.settings.session_idle_minutes)
    assert await web.sign_in("admin") == 303
    web.clock.advance(idle - timedelta(seconds=1))
    assert await web.status("/imports") == 200  # and the request counts as activity
    web.clock.advance(idle - timedelta(seconds=1))
    assert await web.status("/imports") == 200
    web.clock.advance(idle)
    assert await web.status("/imports") == 303  # to the sign-in form
    web.clock.advance(timedelta(seconds=-idle.total_seconds() * 2))
    assert await web.status("/imports") == 303  # the row is gone, not only out of date


async def test_signing_out_of_a_session_that_timed_out_goes_to_the_sign_in_form(
    web: Web,
) -> None:
    add_user(web.db, "admin", "acme")
    assert await web.sign_in("admin") == 303
    page = await web.client.get("/imports")
    token = csrf_of(await page.text())
    web.client.session.cookie_jar.clear()  # as after the idle timeout: no live session
    response = await web.client.post("/signout", data={"csrf_token": token}, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/signin"


async def test_a_session_ends_at_the_absolute_timeout_however_active(web: Web) -> None:
    add_user(web.db, "admin", "acme")
    absolute = timedelta(hours=web.ctx.settings.session_max_hours)
    step = timedelta(minutes=web.ctx.settings.session_idle_minutes / 2)
    assert await web.sign_in("admin") == 303
    elapsed = timedelta(0)
    while elapsed + step < absolute:
        web.clock.advance(step)
        elapsed += step
        assert await web.status("/imports") == 200
    web.clock.advance(absolute - elapsed)
    assert await web.status("/imports") == 303


async def test_a_disabled_user_or_a_new_password_ends_the_session(web: Web) -> None:
    add_user(web.db, "admin", "acme")
    assert await web.sign_in("admin") == 303
    with web.db.write() as conn:
        users.set_password(conn, "admin", hash_password("another-password"), START)
    assert await web.status("/imports") == 303
    assert await web.sign_in("admin", "another-password") == 303
    with web.db.write() as conn:
        users.set_disabled(conn, "admin", True)
    assert await web.status("/imports") == 303
    assert await web.sign_in("admin", "another-password") == 401


async def test_the_cookie_is_httponly_and_lax_and_signed(web: Web) -> None:
    add_user(web.db, "admin", "acme")
    form = await web.client.get("/signin")
    token = csrf_of(await form.text())
    response = await web.client.post(
        "/signin",
        data={"csrf_token": token, "username": "admin", "password": PASSWORD},
        allow_redirects=False,
    )
    cookie = response.cookies["rosterdrop_session"]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    assert not cookie["secure"]
    assert response.headers["Location"] == "/imports"
    web.client.session.cookie_jar.clear()
    forged = cookie.value[:-1] + ("0" if cookie.value[-1] != "0" else "1")
    for value, status in ((forged, 303), (cookie.value, 200)):
        headers = {"Cookie": f"rosterdrop_session={value}"}
        response = await web.client.get("/imports", headers=headers, allow_redirects=False)
        assert response.status == status


async def test_every_answer_carries_the_security_headers_redirects_too(web: Web) -> None:
    """A raised redirect (the sign-in's 303 that sets the session cookie) is an answer too:
    it must not go out without the policy and no-store the pages have."""
    add_user(web.db, "admin", "acme")
    token = csrf_of(await (await web.client.get("/signin")).text())
    answers = {
        "a page": await web.client.get("/signin"),
        "a redirect": await web.client.get("/imports", allow_redirects=False),
        "the sign-in's redirect": await web.client.post(
            "/signin", data={"csrf_token": token, "username": "admin", "password": PASSWORD},
            allow_redirects=False,
        ),
        "a 404": await web.client.get("/imports/999999"),
    }  # fmt: skip
    assert answers["the sign-in's redirect"].status == 303
    for what, response in answers.items():
        assert response.headers["Content-Security-Policy"].startswith("default-src 'self'"), what
        assert response.headers["X-Frame-Options"] == "DENY", what
        assert response.headers["X-Content-Type-Options"] == "nosniff", what
        assert response.headers["Cache-Control"] == "no-store", what
    web.client.session.cookie_jar.clear()
    anonymous = await web.client.get("/api/v1/imports")
    assert anonymous.status == 401
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"  # RFC 9110: a 401 says how


async def test_behind_https_the_cookies_are_secure(settings: Settings, db: Database) -> None:
    add_user(db, "admin", "acme")
    async with web_for(settings, db, public_url="https://roster.example.org") as web:
        form = await web.client.get("/signin")
        assert form.cookies["rosterdrop_signin"]["secure"]
        token = form.cookies["rosterdrop_signin"].value
        web.client.session.cookie_jar.clear()  # a Secure cookie is not sent back over http
        response = await web.client.post(
            "/signin",
            data={"csrf_token": token, "username": "admin", "password": PASSWORD},
            headers={"Cookie": f"rosterdrop_signin={token}"},
            allow_redirects=False,
        )
        assert response.status == 303
        assert response.cookies["rosterdrop_session"]["secure"]


async def test_the_sign_in_form_needs_its_own_token_and_stays_on_this_site(web: Web) -> None:
    add_user(web.db, "admin", "acme")
    refused = await web.client.post(
        "/signin", data={"username": "admin", "password": PASSWORD}, allow_redirects=False
    )
    assert refused.status == 403
    # Browsers drop tabs and line breaks from a URL: "/<TAB>/evil.example" is another site.
    elsewhere = ["//evil.example/", "/\t/evil.example", "/\n/evil.example", "/\r/evil.example",
                 "/\\evil.example", "https://evil.example/", "imports"]  # fmt: skip
    for target in elsewhere:
        web.client.session.cookie_jar.clear()  # signed out again, with a fresh form
        token = csrf_of(await (await web.client.get("/signin")).text())
        response = await web.client.post(
            "/signin",
            data={"csrf_token": token, "username": "admin", "password": PASSWORD,
                  "next": target},
            allow_redirects=False,
        )  # fmt: skip
        assert response.status == 303
        assert response.headers["Location"] == "/imports", target
    signed_in = await web.client.get("/signin?next=/%09/evil.example", allow_redirects=False)
    assert signed_in.headers["Location"] == "/imports"
    here = await web.client.get("/signin?next=/imports/7%3Fpage%3D2", allow_redirects=False)
    assert here.headers["Location"] == "/imports/7?page=2"


async def test_the_imports_list_pages_by_keyset_with_paused_imports_on_top(web: Web) -> None:
    add_user(web.db, "admin", "acme")
    older = add_imports(web.db, "acme", ImportState.IMPORTED, IMPORTS_PAGE_SIZE + 1)
    paused = add_imports(web.db, "acme", ImportState.PAUSED, 2)
    assert await web.sign_in("admin") == 303
    first = await (await web.client.get("/api/v1/imports")).json()
    ids = [i["id"] for i in first["imports"]]
    assert ids[:2] == paused[::-1]
    assert ids[2:] == older[::-1]
    assert first["next_before"] is None  # the API's pages are larger
    html = await (await web.client.get("/imports")).text()
    assert f"before={older[1]}" in html  # page one ends at the page size
    second = await (await web.client.get(f"/imports?before={older[1]}")).text()
    assert f'href="/imports/{older[0]}"' in second
    assert f'href="/imports/{paused[0]}"' not in second  # paused ones lead page one only
    assert "before=" not in second
    only = await (await web.client.get("/api/v1/imports?state=paused")).json()
    assert [i["id"] for i in only["imports"]] == paused[::-1]


async def test_the_list_says_how_many_paused_imports_it_does_not_show(web: Web) -> None:
    add_user(web.db, "admin", "acme")
    add_user(web.db, "other-admin", "other")
    add_imports(web.db, "other", ImportState.PAUSED, 2)  # another tenant's are not counted
    paused = add_imports(web.db, "acme", ImportState.PAUSED, MAX_PAUSED_SHOWN)
    assert await web.sign_in("admin") == 303
    html = await (await web.client.get("/imports")).text()
    assert all(f'href="/imports/{i}"' in html for i in paused)
    assert "more paused import" not in html  # exactly the bound: all of them are shown
    oldest = paused[0]
    paused += add_imports(web.db, "acme", ImportState.PAUSED, 2)
    html = await (await web.client.get("/imports")).text()
    assert f'href="/imports/{oldest}"' not in html
    assert f'href="/imports/{paused[2]}"' in html
    assert '<a href="/imports?tenant=acme&amp;state=paused">2 more paused imports</a>' in html
    listed = await (await web.client.get("/imports?state=paused")).text()
    assert f'href="/imports/{paused[-1]}"' in listed  # the filtered list pages through all
    assert "more paused import" not in listed


async def test_the_list_shows_each_imports_counts_from_its_plan(web: Web) -> None:
    add_user(web.db, "admin", "acme")
    applied, failed, quiet = add_imports(web.db, "acme", ImportState.IMPORTED, 3)
    with web.db.write() as conn:
        counts = {
            "students": {"added": 1200, "updated": 3, "deactivated": 1, "unchanged": 40},
            "teachers": {"updated": 2},
            "schools": {"added": 1},  # not in the compact line
        }
        imports.update(conn, applied, START, counts=counts)
        imports.update(conn, quiet, START, counts={"students": {"unchanged": 40}})
        imports.update(conn, failed, START, state=ImportState.FAILED)
    assert await web.sign_in("admin") == 303
    html = await (await web.client.get("/imports")).text()
    rows = {
        int(m[1]): m[0]
        for m in re.finditer(r'<tr>\s*<td><a href="/imports/(\d+)".*?</tr>', html, re.S)
    }
    assert "<td>students +1,200 ~3 −1 · teachers ~2</td>" in rows[applied]
    assert "<td>no changes</td>" in rows[quiet]
    assert "<td>—</td>" in rows[failed]  # failed before a plan was made


async def test_an_imports_problems_page_and_filter(web: Web) -> None:
    add_user(web.db, "admin", "acme")
    (import_id,) = add_imports(web.db, "acme", ImportState.IMPORTED_WITH_ERRORS, 1)
    problems = [
        Problem(Severity.ERROR, f"code_{n % 2}", f"message {n}", "students.csv", n + 2, "grade")
        for n in range(PROBLEMS_PAGE_SIZE + 1)
    ]
    with web.db.write() as conn:
        imports.save_problems(conn, import_id, problems)
        imports.update(conn, import_id, START, problem_totals={"error": len(problems)})
    assert await web.sign_in("admin") == 303
    first = await (await web.client.get(f"/imports/{import_id}")).text()
    assert first.count('<td class="mono">') == PROBLEMS_PAGE_SIZE
    assert "Page 1 of 2" in first
    second = await (await web.client.get(f"/imports/{import_id}?page=2")).text()
    assert second.count('<td class="mono">') == 1
    filtered = await (await web.client.get(f"/imports/{import_id}?code=code_1")).text()
    assert filtered.count('<td class="mono">') == PROBLEMS_PAGE_SIZE // 2
    assert "Page 1 of" not in filtered


async def test_an_operator_sees_every_tenant_and_can_pick_one(web: Web) -> None:
    add_user(web.db, "ops", None)
    add_user(web.db, "north-admin", "north")
    add_user(web.db, "south-admin", "south")
    (north,) = add_imports(web.db, "north", ImportState.IMPORTED, 1)
    (south,) = add_imports(web.db, "south", ImportState.PAUSED, 1)
    assert await web.sign_in("ops") == 303
    html = await (await web.client.get("/imports")).text()
    assert f'href="/imports/{north}"' in html
    assert f'href="/imports/{south}"' in html
    assert '<option value="north"' in html  # the tenant switcher
    picked = await (await web.client.get("/imports?tenant=south")).text()
    assert f'href="/imports/{north}"' not in picked
    assert f'href="/imports/{south}"' in picked
    assert await web.status(f"/imports/{north}") == 200
    assert await web.status("/imports?tenant=nowhere") == 404


async def test_a_disabled_tenants_administrator_reads_but_changes_nothing(web: Web) -> None:
    add_user(web.db, "ops", None)
    add_user(web.db, "north-admin", "north")
    (paused,) = add_imports(web.db, "north", ImportState.PAUSED, 1)
    with web.db.write() as conn:
        tenants.update(conn, "north", disabled=True)
    assert await web.sign_in("north-admin") == 303
    page = await web.client.get(f"/imports/{paused}/reject")
    assert page.status == 200  # reading still works
    token = csrf_of(await page.text())
    refused = [
        await web.client.post(f"/imports/{paused}/reject", data={"csrf_token": token}),
        await web.client.post(
            "/tenants/north/setup/emails", data={"csrf_token": token, "emails": "a@b.example"}
        ),
        await web.client.post(f"/api/v1/imports/{paused}/reject", headers={"X-CSRF-Token": token}),
    ]
    assert [r.status for r in refused] == [403, 403, 403]
    assert "north is disabled" in await refused[0].text()
    assert "read-only" in (await refused[2].json())["error"]
    with web.db.read() as conn:
        assert imports.get(conn, paused).state is ImportState.PAUSED
        assert tenants.get(conn, "north").emails == ()
    signed_out = await web.client.post(
        "/signout", data={"csrf_token": token}, allow_redirects=False
    )
    assert signed_out.status == 303  # signing out is never refused
    assert await web.sign_in("ops") == 303  # the operator still decides
    confirm = await (await web.client.get(f"/imports/{paused}/reject")).text()
    await web.client.post(f"/imports/{paused}/reject", data={"csrf_token": csrf_of(confirm)})
    with web.db.read() as conn:
        assert imports.get(conn, paused).state is ImportState.REJECTED


async def test_an_approval_the_roster_outran_pauses_again_and_says_so(
    web: Web, tmp_path: Path
) -> None:
    """As the CLI's approve: the plan is re-checked, and a roster that moved since (an older
    upload applied after this one paused) makes it pause again instead of applying."""
    add_user(web.db, "admin", "acme")
    pipeline = web.ctx.pipeline
    with web.db.read() as conn:
        acme = tenants.get(conn, "acme")

    def receive(snap: Snapshot, name: str) -> int:
        folder = snap.write(tmp_path / name)
        return pipeline.receive(acme, find_files(folder), source="cli", move=False)

    pipeline.run(receive(one_class_district(50), "first"))
    older = receive(one_class_district(60), "older")
    smaller = one_class_district(50)
    for key in list(smaller.students)[-6:]:
        del smaller.students[key]
    newer = receive(smaller, "newer")
    assert pipeline.run(newer).state is ImportState.PAUSED  # 6 of 50
    assert pipeline.run(older).state is ImportState.IMPORTED

    assert await web.sign_in("admin") == 303
    confirm = await (await web.client.get(f"/imports/{newer}/approve")).text()
    assert "deactivate 6 students" in confirm
    page = await web.client.post(
        f"/imports/{newer}/approve", data={"csrf_token": csrf_of(confirm), "note": "fine"}
    )
    html = await page.text()
    assert page.status == 200
    assert "Paused again: the roster changed since" in html
    assert "would deactivate 16 of 60 active students" in html
    assert pipeline.report(newer).state is ImportState.PAUSED
    assert "result: paused; note: fine" in html  # the audit log says what came of it
