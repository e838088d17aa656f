"""The Import Manager and OneRoster: the Setup page's upload format (checked, audited), and
an import's source format on the imports list and the import's page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from daemon import uploadset
from daemon.config import Settings
from daemon.store import tenants
from daemon.store.database import Database
from daemon.store.tables import audit_log
from tests.integration.test_web_app import Web, add_user, csrf_of, web_for
from tests.support.oneroster import FIXTURES, zip_folder


@pytest.fixture
async def web(settings: Settings, db: Database) -> AsyncIterator[Web]:
    async with web_for(settings, db) as made:
        yield made


async def save_format(web: Web, value: str, tenant: str = "sakura") -> tuple[int, str]:
    csrf = csrf_of(await (await web.client.get(f"/tenants/{tenant}/setup")).text())
    response = await web.client.post(
        f"/tenants/{tenant}/setup/input-format", data={"csrf_token": csrf, "input_format": value}
    )
    return response.status, await response.text()


def input_format(web: Web) -> str:
    with web.db.read() as conn:
        return tenants.get(conn, "sakura").settings.input_format


async def test_a_district_sets_its_upload_format_and_the_change_is_audited(web: Web) -> None:
    add_user(web.db, "sakura-admin", "sakura")
    assert await web.sign_in("sakura-admin") == 303
    html = await (await web.client.get("/tenants/sakura/setup")).text()
    assert 'id="input_format_auto" name="input_format" value="auto" checked' in html
    status, html = await save_format(web, "oneroster")
    assert (status, input_format(web)) == (200, "oneroster")
    assert "The upload format was saved." in html
    assert 'value="oneroster" checked' in html
    status, html = await save_format(web, "oneroster")
    assert "The upload format was already so." in html
    status, _ = await save_format(web, "excel")
    assert (status, input_format(web)) == (400, "oneroster")
    with web.db.read() as conn:
        rows = conn.execute(sa.select(audit_log.c.action, audit_log.c.detail)).all()
    assert [tuple(r) for r in rows] == [("input_format", "auto → oneroster")]


async def test_an_import_shows_its_source_format(web: Web, tmp_path: Path) -> None:
    add_user(web.db, "sakura-admin", "sakura")
    pipeline = web.ctx.pipeline
    with web.db.read() as conn:
        sakura = tenants.get(conn, "sakura")
    zipped = zip_folder(FIXTURES / "v1.2", tmp_path / "roster.zip")
    import_id = pipeline.receive(sakura, uploadset.find_path(zipped), source="cli", move=False)
    assert pipeline.run(import_id).source_format == "oneroster"
    assert await web.sign_in("sakura-admin") == 303
    listing = await (await web.client.get("/imports")).text()
    assert "<td>OneRoster CSV</td>" in listing
    page = await (await web.client.get(f"/imports/{import_id}")).text()
    assert "by cli · OneRoster CSV" in page
    assert ">users.csv (students)</th>" in page
    # Each count links to its records, as for a Clever file.
    assert f"/imports/{import_id}/changes?entity=students&amp;kind=add#records" in page
    assert f"/imports/{import_id}/changes?entity=section_teachers&amp;kind=add#records" in page


async def test_a_oneroster_imports_files_are_listed_and_downloaded_as_sent(
    web: Web, tmp_path: Path
) -> None:
    """Loose files are offered by their manifest names, a zip as the one file it was."""
    add_user(web.db, "sakura-admin", "sakura")
    pipeline = web.ctx.pipeline
    with web.db.read() as conn:
        sakura = tenants.get(conn, "sakura")
    loose = tmp_path / "loose"
    loose.mkdir()
    for path in (FIXTURES / "v1.2").iterdir():
        (loose / path.name).write_bytes(path.read_bytes())
    zipped = zip_folder(FIXTURES / "v1.2", tmp_path / "roster.zip")
    by_folder = pipeline.receive(sakura, uploadset.find_path(loose), source="cli", move=False)
    pipeline.run(by_folder)
    by_zip = pipeline.receive(sakura, uploadset.find_path(zipped), source="cli", move=False)
    pipeline.run(by_zip)
    assert await web.sign_in("sakura-admin") == 303

    page = await (await web.client.get(f"/imports/{by_folder}")).text()
    assert f"/imports/{by_folder}/files/academicSessions.csv" in page
    got = await web.client.get(f"/imports/{by_folder}/files/academicSessions.csv")
    assert got.status == 200
    assert await got.read() == (FIXTURES / "v1.2" / "academicSessions.csv").read_bytes()
    assert (await web.client.get(f"/imports/{by_folder}/files/schools.csv")).status == 404

    page = await (await web.client.get(f"/imports/{by_zip}")).text()
    assert f"/imports/{by_zip}/files/zip" in page
    got = await web.client.get(f"/imports/{by_zip}/files/zip")
    assert got.headers["Content-Type"] == "application/zip"
    assert await got.read() == zipped.read_bytes()
