"""The checks in the Import Manager: a district's checks listed apart from its imports, a
check's report as /check/results has it, another tenant's check not found, and the Setup
switch for emailing the answers (audited, CSRF-checked by test_web_setup.py)."""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from daemon.check.checker import Checker
from daemon.clever.files import find_files
from daemon.config import Settings
from daemon.dryrun import DryRunner
from daemon.store import checks, tenants
from daemon.store.database import Database
from daemon.store.tables import audit_log
from tests.integration.test_web_app import Web, add_user, csrf_of, web_for
from tests.support.drop import District


@pytest.fixture
async def web(settings: Settings, db: Database) -> AsyncIterator[Web]:
    async with web_for(settings, db) as made:
        yield made


async def run_check(settings: Settings, db: Database, tenant: str, files: dict[str, bytes]) -> int:
    """What the daemon does with a set dropped in /check: the real dry run, in its process."""
    folder = settings.paths.check_dir(tenant)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    checker = Checker(db, settings, DryRunner(settings))
    with db.read() as conn:
        owner = tenants.get(conn, tenant)
    check_id = checker.receive(owner, find_files(folder))
    await checker.run(check_id)
    return check_id


def with_bad_grade(files: dict[str, bytes]) -> dict[str, bytes]:
    rows = list(csv.reader(io.StringIO(files["students.csv"].decode())))
    rows[1][rows[0].index("grade")] = "=1+1"
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return {**files, "students.csv": out.getvalue().encode()}


async def test_a_district_reads_its_check_and_not_another_tenants(
    web: Web, settings: Settings, db: Database
) -> None:
    add_user(db, "north-admin", "north")
    add_user(db, "south-admin", "south")
    files = with_bad_grade(District("north", students=10).files())
    check_id = await run_check(settings, db, "north", files)
    assert await web.sign_in("north-admin") == 303

    listing = await (await web.client.get("/checks")).text()
    assert f'href="/checks/{check_id}"' in listing
    assert "be imported" in listing  # one warning: a bad optional value drops only the value
    assert 'href="/checks"' in listing  # in the navigation
    page = await (await web.client.get(f"/checks/{check_id}")).text()
    assert "would be IMPORTED" in page
    assert "students.csv:2:grade" in page
    assert "=1+1" in page
    assert "Download the problem report" in page
    report = await web.client.get(f"/checks/{check_id}/problems.csv")
    assert report.status == 200
    body = (await report.read()).decode("utf-8-sig")
    assert "'=1+1" in body
    # Nothing of it in the imports list.
    imports_page = await (await web.client.get("/imports")).text()
    assert "No imports yet." in imports_page

    assert await web.sign_in("south-admin") == 303
    assert await web.status(f"/checks/{check_id}") == 404
    assert await web.status(f"/checks/{check_id}/problems.csv") == 404
    assert f"/checks/{check_id}" not in await (await web.client.get("/checks")).text()
    assert await web.status("/checks?tenant=north") == 404
    assert await web.status("/checks/99999999999999999999") == 404


async def test_an_operator_sees_every_tenants_checks(
    web: Web, settings: Settings, db: Database
) -> None:
    add_user(db, "ops", None)
    with db.write() as conn:
        for name in ("east", "west"):
            tenants.add(conn, name, emails=[], now=web.clock())
    east = await run_check(settings, db, "east", District("east", students=6).files())
    broken = {**District("west", 6).files(), "sections.csv": b""}
    west = await run_check(settings, db, "west", broken)
    assert await web.sign_in("ops") == 303
    listing = await (await web.client.get("/checks")).text()
    assert f'href="/checks/{east}"' in listing
    assert f'href="/checks/{west}"' in listing
    only_west = await (await web.client.get("/checks?tenant=west")).text()
    assert f'href="/checks/{east}"' not in only_west
    page = await (await web.client.get(f"/checks/{west}")).text()
    assert "would FAIL" in page
    assert "Nothing can be planned" in page
    # The archive expired: the page stays, the download is gone.
    shutil.rmtree(settings.paths.archive / "west" / f"check-{west}")
    assert await web.status(f"/checks/{west}/problems.csv") == 404


async def test_the_setup_switch_emails_the_answers_and_is_audited(web: Web, db: Database) -> None:
    add_user(db, "north-admin", "north")
    assert await web.sign_in("north-admin") == 303
    setup = await (await web.client.get("/tenants/north/setup")).text()
    assert "Point a test export at" in setup
    assert 'id="email_results"' in setup
    assert 'id="email_results" name="email_results" value="on" checked' not in setup
    token = csrf_of(setup)
    response = await web.client.post(
        "/tenants/north/setup/check-emails", data={"csrf_token": token, "email_results": "on"}
    )
    assert response.status == 200
    assert "Check answers are emailed too." in await response.text()
    with db.read() as conn:
        north = tenants.get(conn, "north")
        assert checks.emails_results(conn, north.id)
        [entry] = conn.execute(sa.select(audit_log)).mappings()
    assert (entry["action"], entry["detail"], entry["user_name"]) == (
        "check_emails", "on", "north-admin",
    )  # fmt: skip
    off = await web.client.post("/tenants/north/setup/check-emails", data={"csrf_token": token})
    assert "only written to /check/results" in await off.text()
    with db.read() as conn:
        assert not checks.emails_results(conn, north.id)
