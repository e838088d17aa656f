"""The whole daemon with paramiko as the SIS: five files in /upload become a committed roster."""

from __future__ import annotations

import asyncio

import pytest
from serve_fixtures import Served
from sftp_fixtures import PASSWORD

from tests.support import drop
from tests.support.drop import District, roster_ids

# How a client uploads is the SFTP side's business, whichever database records the import.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def test_five_files_are_imported_archived_and_reported(served: Served) -> None:
    tenant = served.add_tenant("acme")
    district = District("acme", students=30)
    await asyncio.to_thread(served.upload, tenant, district.files())

    [row] = await served.imports_ended(tenant)
    assert row["state"] == "imported"
    roster = served.roster(tenant)
    assert roster_ids(roster, "students", "student_id") == set(district.student_ids())
    assert roster_ids(roster, "schools", "school_id") == set(district.schools)
    assert list(served.upload_dir(tenant).iterdir()) == []
    archived = served.settings.paths.archive / tenant / str(row["id"])
    assert row["files_dir"] == str(archived)
    assert {p.name for p in archived.iterdir()} >= set(district.files())
    assert not (served.settings.paths.spool / tenant / str(row["id"])).exists()
    # The Import Results email is queued with the result and the mailer writes it out.
    [email] = drop.emails(served.db, "import_results")
    assert email["import_id"] == row["id"]
    await served.wait(
        lambda: drop.emails(served.db, "import_results")[0]["state"] == "sent" or None,
        "the Import Results email to be delivered",
    )


@SQLITE_ONLY
async def test_an_overwritten_file_is_imported_in_its_last_version(served: Served) -> None:
    tenant = served.add_tenant("acme")
    wrong, right = District("acme", students=8), District("acme", students=20)

    def upload() -> None:
        with drop.sftp_session(served.port, tenant, PASSWORD) as sftp:
            drop.upload(sftp, {"students.csv": wrong.files()["students.csv"]})
            drop.upload(sftp, right.files())  # students.csv again, over the first one

    await asyncio.to_thread(upload)
    [row] = await served.imports_ended(tenant)
    assert row["state"] == "imported"
    ids = roster_ids(served.roster(tenant), "students", "student_id")
    assert ids == set(right.student_ids())


@SQLITE_ONLY
async def test_winscp_filepart_uploads_are_imported_without_leftovers(served: Served) -> None:
    tenant = served.add_tenant("acme")
    district = District("acme", students=10)

    def upload() -> None:
        with drop.sftp_session(served.port, tenant, PASSWORD) as sftp:
            drop.upload(sftp, district.files(), filepart=True)

    await asyncio.to_thread(upload)
    [row] = await served.imports_ended(tenant)
    assert row["state"] == "imported"
    assert row["problem_totals"].get("warning", 0) == 0  # no `.filepart` reported as "other"
    assert list(served.upload_dir(tenant).iterdir()) == []


async def test_two_uploads_back_to_back_import_in_order(served: Served) -> None:
    tenant = served.add_tenant("acme")
    first, second = District("acme", 20), District("acme", 24)

    await asyncio.to_thread(served.upload, tenant, first.files())
    # The second upload starts as soon as the first set has left /upload (claimed).
    await served.wait(
        lambda: drop.import_rows(served.db, tenant) or None, "the first set to be claimed"
    )
    await asyncio.to_thread(served.upload, tenant, second.files())

    rows = await served.imports_ended(tenant, 2)
    assert [r["state"] for r in rows] == ["imported", "imported"]
    assert [r["superseded_by"] for r in rows] == [None, None]
    assert rows[0]["finished_at"] <= rows[1]["started_at"]
    roster = served.roster(tenant)
    assert roster_ids(roster, "students", "student_id") == set(second.student_ids())
    assert [e["import_id"] for e in drop.emails(served.db, "import_results")] == [
        r["id"] for r in rows
    ]
