"""The change browser in this process (aiohttp's test client) over a real database of each
kind: its page size, search and download bounds at their edges, its links from the import's
page and the confirmation, its JSON, and who may see it."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from daemon.clever.files import find_files
from daemon.config import Settings
from daemon.roster.outcome import ImportState
from daemon.store import tenants
from daemon.store.database import Database
from daemon.web.views import changes
from daemon.web.views.changes import CHANGES_PAGE_SIZE, SEARCH_MAX_CHARS
from daemon.web.views.roster import MAX_CURSOR_CHARS
from tests.integration.test_web_app import Web, add_user, web_for
from tests.support.clever import Snapshot, one_class_district

GONE = 60  # students the paused import deactivates: a page and then some


@pytest.fixture
async def web(settings: Settings, db: Database) -> AsyncIterator[Web]:
    async with web_for(settings, db) as made:
        yield made


def _import(web: Web, tmp_path: Path, tenant: str, snap: Snapshot, name: str) -> int:
    pipeline = web.ctx.pipeline
    with web.db.read() as conn:
        owner = tenants.get(conn, tenant)
    folder = snap.write(tmp_path / name)
    import_id = pipeline.receive(owner, find_files(folder), source="cli", move=False)
    pipeline.run(import_id)
    return import_id


def _paused(web: Web, tmp_path: Path, tenant: str = "acme") -> int:
    return _imports(web, tmp_path, tenant)[1]


def _imports(web: Web, tmp_path: Path, tenant: str = "acme") -> tuple[int, int]:
    """120 students (applied), then an upload without the last GONE of them, and one renamed
    to a formula (S02) (paused)."""
    add_user(web.db, f"{tenant}-admin", tenant)
    first = _import(web, tmp_path, tenant, one_class_district(120), f"{tenant}-first")
    smaller = one_class_district(120)
    for n in range(121 - GONE, 121):
        del smaller.students[("SCH1", f"S{n:02d}")]
    smaller.students[("SCH1", "S02")] = ("=cmd|'/c calc'!A0", "No2", "", "s2", "04")
    paused = _import(web, tmp_path, tenant, smaller, f"{tenant}-second")
    assert web.ctx.pipeline.report(paused).state is ImportState.PAUSED
    return first, paused


async def test_the_deactivated_students_page_by_the_page_size_and_search_by_id_or_name(
    web: Web, tmp_path: Path
) -> None:
    paused = _paused(web, tmp_path)
    assert await web.sign_in("acme-admin") == 303
    base = f"/api/v1/imports/{paused}/changes?entity=students&kind=deactivate"

    first = await (await web.client.get(base)).json()
    assert (first["total"], first["pages"], len(first["records"])) == (GONE, 2, CHANGES_PAGE_SIZE)
    assert first["records"][0] == {
        "key": {"school_id": "SCH1", "student_id": "S100"},
        "name": "Kid No100",
        "changes": {},
    }  # fmt: skip: ids in text order, S100 before S61
    second = await (await web.client.get(base + "&page=2")).json()
    assert len(second["records"]) == GONE - CHANGES_PAGE_SIZE
    beyond = await (await web.client.get(base + "&page=99")).json()
    assert beyond["page"] == 2  # past the last page: the last page

    by_id = await (await web.client.get(base + "&q=s11")).json()
    assert [r["key"]["student_id"] for r in by_id["records"]] == [f"S11{n}" for n in range(10)]
    by_name = await (await web.client.get(base + "&q=no10")).json()
    assert by_name["total"] == 10  # No100 … No109
    literal = await (await web.client.get(base + "&q=%25")).json()
    assert literal["total"] == 0  # a % is searched for, not a wildcard

    updated = await (await web.client.get(f"/api/v1/imports/{paused}/changes?kind=update")).json()
    assert updated["entity"] == "students"  # the first entity with updates
    (s02,) = updated["records"]
    assert s02["changes"] == {
        "first_name": {"before": "Kid", "after": "=cmd|'/c calc'!A0"},
        "grade": {"before": "03", "after": "04"},
    }
    assert updated["counts"] == {
        "add": 0, "update": 1, "reactivate": 0, "deactivate": GONE, "held": 0,
    }  # fmt: skip


async def test_the_pages_reached_by_next_and_previous_are_the_pages_by_number(
    web: Web, tmp_path: Path
) -> None:
    first, paused = _imports(web, tmp_path)
    assert await web.sign_in("acme-admin") == 303

    async def get(url: str) -> dict[str, Any]:
        answer = await web.client.get(url)
        assert answer.status == 200, await answer.text()
        return dict(await answer.json())

    lists = [
        (first, "students", "add", 120),  # an applied first import's: read from the roster
        (paused, "students", "deactivate", GONE),  # kept in import_changes
    ]
    for import_id, entity, kind, total in lists:
        base = f"/api/v1/imports/{import_id}/changes?entity={entity}&kind={kind}"
        pages = -(-total // CHANGES_PAGE_SIZE)
        by_number = [(await get(f"{base}&page={n}"))["records"] for n in range(1, pages + 1)]
        assert sum(len(records) for records in by_number) == total
        answer = await get(base)
        onward = [answer["records"]]
        while answer["next_after"]:
            answer = await get(f"{base}&page={answer['page'] + 1}&after={answer['next_after']}")
            onward.append(answer["records"])
        assert onward == by_number
        assert answer["page"] == pages
        back = [answer["records"]]
        while answer["previous_before"]:
            before = answer["previous_before"]
            answer = await get(f"{base}&page={answer['page'] - 1}&before={before}")
            back.append(answer["records"])
        assert back[::-1] == by_number

    # An applied first import's enrollments, searched by their student's name or an id.
    links = f"/api/v1/imports/{first}/changes?entity=enrollments&kind=add&q="
    assert [r["name"] for r in (await get(links + "kid%20no1"))["records"]] == ["Kid No1"]
    assert (await get(links + "no2"))["total"] == 0  # S02 … are in no class
    assert (await get(links + "c1"))["total"] == 1  # the section's id

    # The page's own links are those cursors, and say where they are.
    html = await (await web.client.get(f"/imports/{first}/changes?entity=students&kind=add")).text()
    assert "Page 1 of 3" in html
    found = re.search(r'<a href="([^"]+)" rel="next">Next</a>', html)
    assert found is not None
    assert "after=" in found.group(1)
    second = await (await web.client.get(found.group(1).replace("&amp;", "&"))).text()
    assert "Page 2 of 3" in second
    assert 'rel="prev">Previous</a>' in second
    assert (
        f"/imports/{first}/changes?entity=students&amp;kind=add&amp;q=&amp;page=3#records" in second
    )


async def test_a_cursor_that_is_not_of_the_list_is_ignored_for_the_page_number(
    web: Web, tmp_path: Path
) -> None:
    first, _ = _imports(web, tmp_path)
    assert await web.sign_in("acme-admin") == 303
    base = f"/api/v1/imports/{first}/changes?entity=students&kind=add&page=2"
    second = await (await web.client.get(base)).json()
    after = second["records"][0]["key"]
    at_limit = changes.encode_cursor((after["school_id"], after["student_id"]))
    enrollment = changes.encode_cursor(("SCH1", "C1", "S01"))  # three values, not two
    for name, cursor in [
        ("after", "not-base64!"),
        ("before", enrollment),
        ("after", at_limit + "A" * (MAX_CURSOR_CHARS + 1 - len(at_limit))),  # one past
    ]:
        answer = await web.client.get(f"{base}&{name}={cursor}")
        assert answer.status == 200
        assert (await answer.json())["records"] == second["records"]
    padded = at_limit + "=" * (MAX_CURSOR_CHARS - len(at_limit))  # at the bound: read
    moved = await (await web.client.get(f"{base}&after={padded}")).json()
    assert moved["records"][0] == second["records"][1]


async def test_a_search_and_the_list_asked_for_are_checked(web: Web, tmp_path: Path) -> None:
    paused = _paused(web, tmp_path)
    assert await web.sign_in("acme-admin") == 303
    page = f"/imports/{paused}/changes?entity=students&kind=deactivate"
    at_limit = await web.client.get(page + "&q=" + "x" * SEARCH_MAX_CHARS)
    assert at_limit.status == 200
    assert "No record matches this search." in await at_limit.text()
    too_long = await web.client.get(page + "&q=" + "x" * (SEARCH_MAX_CHARS + 1))
    assert too_long.status == 400
    assert f"a search is at most {SEARCH_MAX_CHARS} characters, not 101" in await too_long.text()
    wrong = await web.client.get(f"/api/v1/imports/{paused}/changes?entity=pupils")
    assert wrong.status == 400
    assert "entity must be one of schools, teachers" in (await wrong.json())["error"]
    wrong = await web.client.get(f"/api/v1/imports/{paused}/changes?kind=deleted")
    assert "kind must be one of add, update, reactivate, deactivate, held" in await wrong.text()


async def test_the_import_page_and_the_confirmation_link_to_the_lists(
    web: Web, tmp_path: Path
) -> None:
    paused = _paused(web, tmp_path)
    assert await web.sign_in("acme-admin") == 303
    href = f"/imports/{paused}/changes?entity=students&amp;kind=deactivate#records"
    page = await (await web.client.get(f"/imports/{paused}")).text()
    assert f'<a href="{href}"' in page
    confirm = await (await web.client.get(f"/imports/{paused}/approve")).text()
    assert f'<a href="{href}">60 students to deactivate</a>' in confirm
    listed = await (await web.client.get(href.replace("&amp;", "&"))).text()
    assert "Students to deactivate: 60" in listed
    assert "Kid No61" in listed
    assert "Kid No95" not in listed  # on page 2 (S100 … S120 come first: text order)
    assert "Page 1 of 2" in listed


async def test_the_download_is_formula_safe_and_bounded(
    web: Web, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paused = _paused(web, tmp_path)
    assert await web.sign_in("acme-admin") == 303
    url = f"/imports/{paused}/changes.csv?entity=students&kind=update"
    response = await web.client.get(url)
    assert response.headers["X-Rosterdrop-Complete"] == "true"
    assert f"import-{paused}-students-update.csv" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert [(r["student_id"], r["first_name before"], r["first_name after"]) for r in rows] == [
        ("S02", "Kid", "'=cmd|'/c calc'!A0")  # a spreadsheet shows it, never runs it
    ]
    assert (rows[0]["grade before"], rows[0]["grade after"], rows[0]["change"]) == (
        "03",
        "04",
        "update",
    )

    whole = await (await web.client.get(url.replace("update", "deactivate"))).text()
    lines = whole.splitlines(keepends=True)
    assert len(lines) == 1 + GONE
    limit = len("".join(lines[:11]).encode())  # the header and exactly ten rows
    monkeypatch.setattr(changes, "DOWNLOAD_LIMIT_BYTES", limit)
    exact = await web.client.get(url.replace("update", "deactivate"))
    assert exact.headers["X-Rosterdrop-Complete"] == "false"
    assert (await exact.text()).splitlines(keepends=True) == lines[:11]
    monkeypatch.setattr(changes, "DOWNLOAD_LIMIT_BYTES", limit - 1)
    fewer = await (await web.client.get(url.replace("update", "deactivate"))).text()
    assert fewer.splitlines(keepends=True) == lines[:10]  # whole rows only


async def test_another_tenants_changes_are_not_found(web: Web, tmp_path: Path) -> None:
    theirs = _paused(web, tmp_path, "north")
    add_user(web.db, "south-admin", "south")
    assert await web.status(f"/api/v1/imports/{theirs}/changes") == 401  # not signed in
    assert await web.sign_in("south-admin") == 303
    for path in ("changes", "changes.csv", "changes?entity=students&kind=deactivate"):
        assert await web.status(f"/imports/{theirs}/{path}") == 404
    assert await web.status(f"/api/v1/imports/{theirs}/changes") == 404
    add_user(web.db, "ops", None)
    assert await web.sign_in("ops") == 303
    assert await web.status(f"/imports/{theirs}/changes") == 200  # an operator sees all
