"""Choose Files in this process over each kind of database: the five files streamed to disk
within their bounds (at their edges), wrong names and missing files refused by name while the
pending upload stays, the dry run in its own process, Process Import through the real intake
and pipeline (source `web`), an identical re-upload, expiry, one check per tenant at a time,
another tenant's page not found, every step audited."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from html import unescape
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient, TestServer

from daemon.config import Settings
from daemon.dryrun import DryRunner
from daemon.errors import Conflict
from daemon.pipeline import Pipeline
from daemon.sftp import public_key_line
from daemon.store import imports, tenants
from daemon.store.database import Database
from daemon.store.roster import active_roster
from daemon.store.tables import audit_log
from daemon.web.app import create_app
from daemon.web.context import SftpDetails
from daemon.web.server import WebServer
from daemon.web.uploads import MAX_CONCURRENT_CHECKS, MULTIPART_OVERHEAD_BYTES, UploadDesk
from tests.integration.test_web_app import Clock, Web, add_user, csrf_of
from tests.support import clever

PAGE = "/tenants/north/upload"
BUTTON = ">Process Import</button>"


async def said(response: aiohttp.ClientResponse) -> str:
    """The page as a reader sees its text (entities such as &#39; decoded)."""
    return unescape(await response.text())


def five_files(**changed: list[list[str]]) -> dict[str, bytes]:
    rows = {**clever.minimal_files(), **changed}
    return {
        name: clever.csv_text([clever.HEADERS[name], *body]).encode() for name, body in rows.items()
    }


@dataclasses.dataclass
class Uploads:
    web: Web
    desk: UploadDesk
    runs: list[asyncio.Future[Any]]

    async def token(self, path: str = PAGE) -> str:
        return csrf_of(await (await self.web.client.get(path)).text())

    async def check(
        self, files: Mapping[str, bytes], path: str = PAGE, token: str | None = None
    ) -> aiohttp.ClientResponse:
        form = aiohttp.FormData()
        form.add_field("csrf_token", token if token is not None else await self.token())
        for name, data in files.items():
            form.add_field("files", data, filename=name, content_type="text/csv")
        if not files:  # what a browser sends for a file input with nothing chosen
            form.add_field("files", b"", filename="", content_type="application/octet-stream")
        return await self.web.client.post(path, data=form, allow_redirects=False)

    async def page(self, path: str = PAGE) -> str:
        return await (await self.web.client.get(path)).text()

    def pending_token(self, html: str) -> str:
        found = re.search(r'name="pending" value="([^"]+)"', html)
        assert found, html
        return found.group(1)

    async def process(self, html: str) -> aiohttp.ClientResponse:
        data = {"csrf_token": csrf_of(html), "pending": self.pending_token(html)}
        response = await self.web.client.post(PAGE + "/process", data=data, allow_redirects=False)
        await asyncio.gather(*self.runs)  # the worker's run of the import, awaited
        return response

    def audit(self) -> list[tuple[str, str, int | None]]:
        with self.web.db.read() as conn:
            rows = conn.execute(sa.select(audit_log).order_by(audit_log.c.id)).mappings()
            return [(r["action"], r["detail"], r["import_id"]) for r in rows]


@contextlib.asynccontextmanager
async def uploads_for(settings: Settings, db: Database, **bounds: Any) -> AsyncIterator[Uploads]:
    settings = dataclasses.replace(settings, web=dataclasses.replace(settings.web, **bounds))
    clock = Clock()
    pipeline = Pipeline(db, settings.paths, settings.smtp, clock=clock)
    runs: list[asyncio.Future[Any]] = []

    def submit(tenant: str, import_id: int) -> None:  # the daemon's worker: the same run
        runs.append(asyncio.get_running_loop().run_in_executor(None, pipeline.run, import_id))

    server = WebServer(
        settings.web, settings.paths.root, db, pipeline,
        sftp=SftpDetails(
            "sftp.example.org", lambda: 2222, settings.paths.host_keys, public_key_line
        ),
        dry_runs=DryRunner(settings), submit_import=submit,
    )  # fmt: skip
    ctx = server.context()
    ctx.clock = clock
    assert ctx.uploads is not None
    ctx.uploads.clock = clock
    for name, tenant in (("north-admin", "north"), ("south-admin", "south")):
        with contextlib.suppress(Conflict):  # a test may start several of these
            add_user(db, name, tenant)
    async with TestClient(TestServer(create_app(ctx))) as client:
        web = Web(client, ctx, db, clock)
        assert await web.sign_in("north-admin") == 303
        yield Uploads(web, ctx.uploads, runs)


@pytest.fixture
async def up(settings: Settings, db: Database) -> AsyncIterator[Uploads]:
    async with uploads_for(settings, db) as made:
        yield made


def north_roster(db: Database) -> dict[str, list[dict[str, Any]]]:
    with db.read() as conn:
        return active_roster(conn, tenants.get(conn, "north").id)


@pytest.mark.slow
async def test_checked_files_show_the_dry_run_then_process_import_applies_them(
    up: Uploads,
) -> None:
    files = five_files()
    files["Students.csv"] = files.pop("students.csv")  # names match in any case, as by SFTP
    response = await up.check(files)
    assert response.status == 303
    assert response.headers["Location"] == PAGE
    html = await up.page()
    assert "Processing would apply these changes straight away" in html
    assert BUTTON in html
    assert north_roster(up.web.db)["students"] == []  # a dry run: nothing applied
    with up.web.db.read() as conn:
        assert imports.list_recent(conn, tenant_id=None, limit=10) == []  # nor recorded

    response = await up.process(html)
    assert response.status == 303
    import_id = int(response.headers["Location"].rsplit("/", 1)[1])
    with up.web.db.read() as conn:
        record = imports.get(conn, import_id)
    assert (record.source, record.state) == ("web", "imported")
    assert {s["student_id"] for s in north_roster(up.web.db)["students"]} == {"S1", "S2"}
    assert not (up.desk.folder("north") / "files").exists()  # the claim took them
    page = await (await up.web.client.get(f"/imports/{import_id}")).text()
    assert "by web" in page
    assert "upload_processed" in page  # on the import's own page, with who did it
    actions = up.audit()
    assert [a[0] for a in actions] == ["upload_checked", "upload_processed"]
    assert actions[0][1].startswith("5 files, ")
    assert actions[1][2] == import_id
    assert BUTTON not in await up.page()  # nothing waits any more


@pytest.mark.slow
async def test_a_file_at_the_size_bounds_is_taken_and_a_byte_more_is_refused(
    settings: Settings, db: Database
) -> None:
    files = five_files()
    largest = max(len(data) for data in files.values())
    total = sum(len(data) for data in files.values())
    async with uploads_for(settings, db, upload_max_file_bytes=largest) as up:
        assert (await up.check(files)).status == 303  # exactly at the bound
    async with uploads_for(settings, db, upload_max_file_bytes=largest - 1) as up:
        before = await up.page()
        response = await up.check(files)
        assert response.status == 413
        big = next(name for name, data in files.items() if len(data) == largest)
        page = await response.text()
        assert f"{big} is larger than {largest - 1:,} bytes" in page
        assert up.pending_token(page) == up.pending_token(before)  # the one pending stays
    async with uploads_for(settings, db, upload_max_bytes=total) as up:
        assert (await up.check(files)).status == 303
    async with uploads_for(settings, db, upload_max_bytes=total - 1) as up:
        response = await up.check(files)
        assert response.status == 413
        assert f"larger than {total - 1:,} bytes together" in await said(response)
        assert up.audit()[-1][0] == "upload_refused"
        assert list(up.desk.folder("north").glob(".incoming-*")) == []  # nothing kept


@pytest.mark.slow
async def test_a_body_far_past_the_bound_is_refused_before_it_is_read(
    settings: Settings, db: Database
) -> None:
    async with uploads_for(settings, db, upload_max_bytes=1000) as up:
        files = five_files()
        files["schools.csv"] = b"school_id,school_name\n" + b"x" * (MULTIPART_OVERHEAD_BYTES + 2000)
        response = await up.check(files)
        assert response.status == 413
        assert "sent): upload them by SFTP instead" in await said(response)


@pytest.mark.slow
async def test_wrong_names_twins_and_missing_files_are_refused_by_name(up: Uploads) -> None:
    assert (await up.check(five_files())).status == 303
    token = up.pending_token(await up.page())

    wrong = {"notes.txt": b"hello", **five_files()}
    response = await up.check(wrong)
    assert response.status == 400
    assert "'notes.txt' is not one of the five files" in await said(response)

    sixth = {**five_files(), "notes.txt": b"hello"}
    response = await up.check(sixth)
    assert response.status == 400
    assert "Choose the five files, no more (at most 5)." in await said(response)

    missing = five_files()
    del missing["enrollments.csv"]
    response = await up.check(missing)
    assert response.status == 400
    assert "enrollments.csv is missing: choose all five files at once" in await said(response)

    twins = five_files()
    twins = {"schools.csv": twins.pop("schools.csv"), "SCHOOLS.CSV": b"school_id\n", **twins}
    del twins["students.csv"]
    response = await up.check(twins)
    assert response.status == 400
    assert "schools.csv was chosen twice (schools.csv and SCHOOLS.CSV)" in await said(response)

    response = await up.check({})
    assert response.status == 400
    assert "No file was chosen" in await said(response)
    assert up.pending_token(await up.page()) == token  # nothing was lost
    assert [a[0] for a in up.audit()] == ["upload_checked"] + ["upload_refused"] * 5


@pytest.mark.slow
async def test_rows_with_errors_are_shown_with_file_and_line_and_would_pause(
    up: Uploads,
) -> None:
    students = [["SCH1", "S1", "Ann", "Lee", "ann@students.org", "ann", "03"],
                ["SCH1", "S2", "Bob", "Kim", "", "bob", "<b>99</b>"],
                ["NOPE", "S3", "Cy", "Ng", "", "cy", "05"]]  # fmt: skip
    assert (await up.check(five_files(**{"students.csv": students}))).status == 303
    html = await up.page()
    assert "Processing would <b>pause the import</b>" in html
    assert "students.csv:4" in html  # the unknown school, with its line
    assert "&lt;b&gt;99&lt;/b&gt;" in html  # the CSV's value, escaped
    assert "<b>99</b>" not in html
    response = await up.process(html)
    import_id = int(response.headers["Location"].rsplit("/", 1)[1])
    with up.web.db.read() as conn:
        assert imports.get(conn, import_id).state == "paused"
    assert north_roster(up.web.db)["students"] == []


@pytest.mark.slow
async def test_an_identical_re_upload_changes_nothing(up: Uploads) -> None:
    assert (await up.check(five_files())).status == 303
    first = await up.process(await up.page())
    assert (await up.check(five_files())).status == 303
    html = await up.page()
    assert "The roster already matches these files: processing changes nothing." in html
    second = await up.process(html)
    with up.web.db.read() as conn:
        record = imports.get(conn, int(second.headers["Location"].rsplit("/", 1)[1]))
    assert record.state == "imported"
    assert first.headers["Location"] != second.headers["Location"]
    assert (record.problem_totals or {})["warning"] == 1  # identical_upload


@pytest.mark.slow
async def test_a_pending_upload_expires_and_is_removed(up: Uploads) -> None:
    assert (await up.check(five_files())).status == 303
    html = await up.page()
    minutes = up.web.ctx.settings.upload_pending_minutes
    up.web.clock.advance(timedelta(minutes=minutes - 1))
    await up.web.sign_in("north-admin")  # the session's own timeout is shorter
    assert up.desk.sweep() == 0
    assert BUTTON in await up.page()
    up.web.clock.advance(timedelta(minutes=1))
    assert up.desk.sweep() == 1  # gone without anyone looking
    await up.web.sign_in("north-admin")
    assert not (up.desk.folder("north") / "files").exists()
    assert BUTTON not in await up.page()
    html = html.replace(csrf_of(html), await up.token())  # the new session's token
    response = await up.process(html)
    assert response.status == 409
    assert "no longer waiting to be processed" in await said(response)


def _slow_body(token: str, boundary: str, gate: asyncio.Event) -> Any:
    async def body() -> AsyncIterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
            f'{token}\r\n--{boundary}\r\nContent-Disposition: form-data; name="files";'
            ' filename="schools.csv"\r\nContent-Type: text/csv\r\n\r\nschool_id,school_name\r\n'
            # Enough of the file that the token's part is seen whole before the pause.
            + "SCH1,Lincoln\r\n"
            * 2000
        ).encode()
        await gate.wait()
        yield f"SCH1,Lincoln\r\n\r\n--{boundary}--\r\n".encode()

    return body()


async def _slow_check(up: Uploads, path: str, token: str, gate: asyncio.Event) -> int:
    boundary = "rosterdrop-test-boundary"
    response = await up.web.client.post(
        path, data=_slow_body(token, boundary, gate), allow_redirects=False,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )  # fmt: skip
    return response.status


async def _until(check: Any) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


@pytest.mark.slow
async def test_a_second_check_of_the_same_tenant_is_refused_while_one_runs(up: Uploads) -> None:
    gate = asyncio.Event()
    first = asyncio.ensure_future(_slow_check(up, PAGE, await up.token(), gate))
    await _until(lambda: "north" in up.desk.slots.busy())
    response = await up.check(five_files())
    assert response.status == 409
    assert "north-admin is already uploading or processing north's files" in await said(response)
    gate.set()
    assert await first == 400  # four files missing: refused, and the slot given back
    assert (await up.check(five_files())).status == 303


@pytest.mark.slow
async def test_checks_past_the_daemons_bound_are_refused_until_one_ends(
    settings: Settings, db: Database
) -> None:
    async with uploads_for(settings, db) as up:
        gate = asyncio.Event()
        slow = []
        for n in range(MAX_CONCURRENT_CHECKS):
            add_user(db, f"admin{n}", f"t{n}")
            await up.web.sign_in(f"admin{n}")
            token = await up.token(f"/tenants/t{n}/upload")
            slow.append(
                asyncio.ensure_future(_slow_check(up, f"/tenants/t{n}/upload", token, gate))
            )
            await _until(lambda n=n: f"t{n}" in up.desk.slots.busy())
        await up.web.sign_in("north-admin")
        response = await up.check(five_files())
        assert response.status == 503
        assert f"at most {MAX_CONCURRENT_CHECKS} at a time" in await said(response)
        gate.set()
        assert await asyncio.gather(*slow) == [400] * MAX_CONCURRENT_CHECKS
        assert (await up.check(five_files())).status == 303


@pytest.mark.slow
async def test_another_tenants_upload_is_not_found_and_a_post_needs_its_token(
    up: Uploads,
) -> None:
    assert (await up.check(five_files(), token="not-the-token")).status == 403
    assert not (up.desk.folder("north") / "files").exists()
    assert (await up.check(five_files())).status == 303
    html = await up.page()
    await up.web.sign_in("south-admin")
    for path in (PAGE, "/tenants/nowhere/upload"):
        assert await up.web.status(path) == 404, path
    south = await up.token("/tenants/south/upload")
    assert (await up.check(five_files(), token=south)).status == 404
    data = {"csrf_token": south, "pending": up.pending_token(html)}
    for action in ("process", "discard"):
        response = await up.web.client.post(f"{PAGE}/{action}", data=data)
        assert response.status == 404, action
    assert (await up.web.client.get("/upload", allow_redirects=False)).headers[
        "Location"
    ] == "/tenants/south/upload"
    await up.web.sign_in("north-admin")
    assert up.pending_token(await up.page()) == up.pending_token(html)


@pytest.mark.slow
async def test_discard_removes_the_pending_upload_and_is_audited(up: Uploads) -> None:
    assert (await up.check(five_files())).status == 303
    html = await up.page()
    data = {"csrf_token": csrf_of(html), "pending": up.pending_token(html)}
    response = await up.web.client.post(PAGE + "/discard", data=data)
    assert response.status == 200
    assert "The files were discarded: nothing was imported." in await said(response)
    assert not (up.desk.folder("north") / "files").exists()
    assert [a[0] for a in up.audit()] == ["upload_checked", "upload_discarded"]
    response = await up.web.client.post(PAGE + "/process", data=data)
    assert response.status == 409


@pytest.mark.slow
async def test_a_process_import_cut_short_by_a_crash_puts_the_files_back(up: Uploads) -> None:
    """What a kill in the middle of Pipeline.receive leaves (the import row, two of the files
    in the spool, no manifest): the next start's recovery puts them back where they waited,
    and the pending upload is whole again."""
    assert (await up.check(five_files())).status == 303
    token = up.pending_token(await up.page())
    paths = up.web.ctx.pipeline.paths
    with up.web.db.write() as conn:
        tenant_id = tenants.get(conn, "north").id
        import_id = imports.create(conn, tenant_id, source="web", files={}, now=up.web.clock())
        folder = paths.spool / "north" / str(import_id)
        imports.update(conn, import_id, up.web.clock(), files_dir=str(folder))
    folder.mkdir(parents=True)
    for name in ("schools.csv", "students.csv"):
        (paths.web_upload_files("north") / name).rename(folder / name)
    assert BUTTON not in await up.page()  # two files short: nothing to process meanwhile

    assert up.web.ctx.pipeline.recover() == []
    assert sorted(p.name for p in paths.web_upload_files("north").iterdir()) == sorted(
        clever.HEADERS
    )
    html = await up.page()
    assert up.pending_token(html) == token
    assert (await up.process(html)).status == 303


@pytest.mark.slow
async def test_the_token_must_be_the_bodys_first_field(up: Uploads) -> None:
    form = aiohttp.FormData()
    for name, data in five_files().items():
        form.add_field("files", data, filename=name, content_type="text/csv")
    form.add_field("csrf_token", await up.token())  # after the files: too late
    response = await up.web.client.post(PAGE, data=form, allow_redirects=False)
    assert response.status == 403
    assert not (up.desk.folder("north") / "files").exists()
    assert up.audit() == []


@pytest.mark.slow
async def test_files_with_a_fatal_problem_are_checked_but_cannot_be_processed(up: Uploads) -> None:
    files = five_files()
    files["teachers.csv"] = b""  # an empty file: the import would fail, nothing applied
    assert (await up.check(files)).status == 303
    html = await up.page()
    assert "These files cannot be imported: fix the fatal problems below" in unescape(html)
    assert "teachers.csv" in html
    assert BUTTON not in html
    assert ">Discard</button>" in html
    data = {"csrf_token": csrf_of(html), "pending": up.pending_token(html)}
    response = await up.web.client.post(PAGE + "/process", data=data)
    assert response.status == 409
    assert "These files cannot be imported" in await said(response)
    with up.web.db.read() as conn:
        assert imports.list_recent(conn, tenant_id=None, limit=10) == []


@pytest.mark.slow
async def test_a_broken_multipart_body_is_refused_and_keeps_nothing(up: Uploads) -> None:
    token = await up.token()
    body = (
        f'--b\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n--b\r\n'
        'Content-Disposition: form-data; name="files"; filename="schools.csv"\r\n\r\n'
        "school_id,school_name\r\nSCH1,Lincoln\r\n--b\r\ngarbage without an end"
    ).encode()
    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    response = await up.web.client.post(PAGE, data=body, headers=headers)
    assert response.status == 400
    assert list(up.desk.folder("north").glob(".incoming-*")) == []
    response = await up.web.client.post(
        PAGE, data=b"x", headers={"Content-Type": "multipart/form-data"}
    )
    assert response.status == 400


def _whole_body(token: str, files: Mapping[str, bytes], preamble: int) -> bytes:
    """A multipart body as a browser sends it, after `preamble` bytes that every multipart
    reader skips: a Content-Length of any size with the same files."""
    boundary = "rosterdrop-edge"
    lines = b"".join(b"p" * 99 + b"\n" for _ in range(preamble // 100))
    pad = lines + b"p" * (preamble - len(lines) - 2) + b"\r\n" if preamble else b""
    body = (
        pad
        + (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
        ).encode()
    )
    for name, data in files.items():
        body += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"'
                "\r\nContent-Type: text/csv\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    return body + f"--{boundary}--\r\n".encode()


@pytest.mark.slow
async def test_a_content_length_past_the_bound_and_the_overhead_is_refused_unread(
    settings: Settings, db: Database
) -> None:
    files = five_files()
    total = sum(len(data) for data in files.values())
    headers = {"Content-Type": "multipart/form-data; boundary=rosterdrop-edge"}
    async with uploads_for(settings, db, upload_max_bytes=total) as up:
        token = await up.token()
        plain = len(_whole_body(token, files, 0))
        at_edge = _whole_body(token, files, total + MULTIPART_OVERHEAD_BYTES - plain)
        assert len(at_edge) == total + MULTIPART_OVERHEAD_BYTES
        response = await up.web.client.post(
            PAGE, data=at_edge, headers=headers, allow_redirects=False
        )
        assert response.status == 303
        past = _whole_body(token, files, total + MULTIPART_OVERHEAD_BYTES - plain + 1)
        response = await up.web.client.post(PAGE, data=past, headers=headers)
        assert response.status == 413
        assert "sent): upload them by SFTP instead" in await said(response)


@pytest.mark.slow
async def test_a_dry_run_past_its_time_is_stopped_and_keeps_nothing(
    settings: Settings, up: Uploads
) -> None:
    assert (await up.check(five_files())).status == 303
    token = up.pending_token(await up.page())
    up.desk.dry_runs = DryRunner(settings, timeout=0)
    response = await up.check(five_files())
    assert response.status == 503
    assert "the check took longer than 0 seconds and was stopped" in await said(response)
    assert "Nothing was kept" in await said(response)
    assert up.pending_token(await up.page()) == token
    assert list(up.desk.folder("north").glob(".incoming-*")) == []


@pytest.mark.slow
async def test_an_operator_chooses_the_tenant_and_a_disabled_one_is_not_imported(
    up: Uploads,
) -> None:
    add_user(up.web.db, "ops", None)
    await up.web.sign_in("ops")
    listing = await (await up.web.client.get("/upload")).text()
    assert 'href="/tenants/north/upload"' in listing
    assert 'href="/tenants/south/upload"' in listing
    chosen = await up.web.client.get("/upload?tenant=south", allow_redirects=False)
    assert chosen.headers["Location"] == "/tenants/south/upload"
    assert (await up.check(five_files())).status == 303  # the operator, for north
    html = await up.page()
    assert "by ops" in html
    with up.web.db.write() as conn:
        tenants.update(conn, "north", disabled=True)
    response = await up.process(html)
    assert response.status == 409
    assert "north is disabled: its uploads are not imported." in await said(response)
    with up.web.db.read() as conn:
        assert imports.list_recent(conn, tenant_id=None, limit=10) == []
