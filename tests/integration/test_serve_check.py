"""The /check folder through the whole daemon: a set dropped there is answered in
/check/results, and nothing about the district's roster or imports changes."""

from __future__ import annotations

import asyncio
import csv
import io
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from serve_fixtures import Served
from sftp_fixtures import PASSWORD

from daemon.store import tenants
from tests.support import checks, drop
from tests.support.drop import District, roster_ids

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def results_of(served: Served, tenant: str, count: int = 1) -> dict[str, bytes]:
    await served.wait(
        lambda: checks.ended_checks(served.db, tenant, count), f"{count} check(s) of {tenant}"
    )
    return await asyncio.to_thread(checks.fetch_results, served.port, tenant, PASSWORD)


async def test_a_first_check_answers_in_results_and_imports_nothing(served: Served) -> None:
    tenant = served.add_tenant("acme")
    district = District("acme", students=30)
    await asyncio.to_thread(checks.check_set, served.port, tenant, PASSWORD, district.files())

    results = await results_of(served, tenant)
    [row] = checks.check_rows(served.db, tenant)
    name = row["results_name"]
    assert sorted(results) == [
        f"{name}-problems.csv", f"{name}-report.json", f"{name}-report.txt",
    ]  # fmt: skip
    answer = checks.answer(results, name)
    assert answer["outcome"] == "import"
    assert answer["entities"]["students"]["added"] == 30
    text = results[f"{name}-report.txt"].decode()
    assert "would be IMPORTED" in text
    assert "students.csv" in text
    assert "Nothing was imported" in text
    # Never an import: no history entry, no roster, no email.
    assert drop.import_rows(served.db, tenant) == []
    assert served.roster(tenant)["students"] == []
    assert drop.emails(served.db) == []
    # The checked files left /check, and are kept in the archive under retention.
    check_dir = served.settings.paths.check_dir(tenant)
    assert sorted(p.name for p in check_dir.iterdir()) == ["results"]
    archived = served.settings.paths.archive / tenant / f"check-{row['id']}"
    assert row["files_dir"] == str(archived)
    assert {p.name for p in archived.iterdir()} >= set(district.files())


async def test_a_check_plans_against_the_roster_and_trips_no_pause(served: Served) -> None:
    tenant = served.add_tenant("acme")
    await asyncio.to_thread(served.upload, tenant, District("acme", students=40).files())
    [imported] = await served.imports_ended(tenant)
    before = served.roster(tenant)
    # Half the students gone: an import of this would pause (deactivations above 10 %).
    await asyncio.to_thread(
        checks.check_set, served.port, tenant, PASSWORD, District("acme", students=20).files()
    )

    results = await results_of(served, tenant)
    [row] = checks.check_rows(served.db, tenant)
    answer = checks.answer(results, row["results_name"])
    assert answer["outcome"] == "pause"
    assert answer["entities"]["students"]["deactivated"] == 20
    [tripped] = [t for t in answer["tripped"] if t["entity"] == "students"]
    assert tripped["rule"] == "deactivate"
    text = results[f"{row['results_name']}-report.txt"].decode()
    assert "would PAUSE" in text
    assert "would deactivate 20 of 40 active students" in text
    # The import history holds the one import, the roster is as it was, nothing paused.
    assert [r["id"] for r in drop.import_rows(served.db, tenant)] == [imported["id"]]
    assert served.roster(tenant) == before
    assert [e["kind"] for e in drop.emails(served.db)] == ["import_results"]


ONEROSTER_SET = Path(__file__).resolve().parents[1] / "fixtures" / "oneroster" / "v1.2"


@pytest.mark.parametrize("pinned", ["auto", "oneroster"])
async def test_a_oneroster_set_in_check_is_answered_file_by_file(
    served: Served, pinned: str
) -> None:
    """A district whose SIS exports OneRoster tests its export in /check: the answer counts
    the set's own files (users.csv read as students and teachers), whether the tenant's
    format is pinned or found from manifest.csv."""
    tenant = served.add_tenant("acme")
    with served.db.write() as conn:
        settings = tenants.get(conn, tenant).settings.updated(input_format=pinned)
        tenants.update(conn, tenant, settings=settings)
    files = {p.name: p.read_bytes() for p in sorted(ONEROSTER_SET.iterdir())}
    await asyncio.to_thread(checks.check_set, served.port, tenant, PASSWORD, files)

    results = await results_of(served, tenant)
    [row] = checks.check_rows(served.db, tenant)
    answer = checks.answer(results, row["results_name"])
    named = [f["file"] for f in answer["files"]]
    assert "orgs.csv" in named
    assert {"users.csv (students)", "users.csv (teachers)"} <= set(named)
    assert all(f["rows"] > 0 for f in answer["files"])
    text = results[f"{row['results_name']}-report.txt"].decode()
    assert "users.csv (students)" in text
    assert "schools.csv" not in text
    assert drop.import_rows(served.db, tenant) == []


async def test_bad_files_in_check_never_touch_upload_and_back(served: Served) -> None:
    tenant = served.add_tenant("acme")
    good = District("acme", students=24).files()
    broken = {**good, "students.csv": b"school_id,first_name\r\nacme-SCH1,Zoe\r\n"}

    def both() -> None:
        with drop.sftp_session(served.port, tenant, PASSWORD) as sftp:
            checks.put(sftp, broken)  # a fatal problem: a required column is missing
            drop.upload(sftp, good)

    await asyncio.to_thread(both)
    [row] = await served.imports_ended(tenant)
    assert row["state"] == "imported"
    results = await results_of(served, tenant)
    [check] = checks.check_rows(served.db, tenant)
    answer = checks.answer(results, check["results_name"])
    assert answer["outcome"] == "fail"
    assert answer["problem_totals"]["fatal"] >= 1
    assert any(p["code"] == "missing_column" for p in answer["problems"])

    # The other way round: a broken upload fails its import, a good check is answered.
    def again() -> None:
        with drop.sftp_session(served.port, tenant, PASSWORD) as sftp:
            drop.upload(sftp, broken)
            checks.put(sftp, good)

    await asyncio.to_thread(again)
    rows = await served.imports_ended(tenant, 2)
    assert rows[-1]["state"] == "failed"
    results = await results_of(served, tenant, 2)
    second = checks.check_rows(served.db, tenant)[-1]
    assert checks.answer(results, second["results_name"])["outcome"] == "import"
    assert len(roster_ids(served.roster(tenant), "students", "student_id")) == 24


@SQLITE_ONLY
async def test_an_upload_open_in_check_does_not_hold_up_upload(served: Served) -> None:
    tenant = served.add_tenant("acme")
    district = District("acme", students=12)

    def upload_beside_an_open_check_file() -> None:
        with (
            drop.sftp_session(served.port, tenant, PASSWORD) as sftp,
            sftp.open("/check/students.csv", "wb") as pending,
        ):
            pending.write(b"school_id,student_id\r\n")
            drop.upload(sftp, district.files())
            drop.poll(lambda: drop.ended_imports(served.db, tenant, 1), 30, "the import to end")

    await asyncio.to_thread(upload_beside_an_open_check_file)
    [row] = drop.import_rows(served.db, tenant)
    assert row["state"] == "imported"


@SQLITE_ONLY
async def test_results_are_read_only_bounded_and_stay_deleted(
    serve_settings_with,
    db,
    sftp_password_hash,  # type: ignore[no-untyped-def]
) -> None:
    from serve_fixtures import serving

    settings = serve_settings_with(ROSTERDROP_SPOOL_CHECK_RESULTS_KEPT="2")
    async with serving(settings, db, sftp_password_hash) as served:
        tenant = served.add_tenant("acme")
        for count in (1, 2, 3):
            files = District("acme", students=10 + count).files()
            await asyncio.to_thread(checks.check_set, served.port, tenant, PASSWORD, files)
            results = await results_of(served, tenant, count)
        rows = checks.check_rows(served.db, tenant)
        kept = {r["results_name"] for r in rows[1:]}
        assert {name.rsplit("-", 1)[0] for name in results} == kept  # the oldest is gone
        newest = rows[-1]["results_name"]

        def client() -> list[str]:
            with drop.sftp_session(served.port, tenant, PASSWORD) as sftp:
                with pytest.raises(PermissionError):
                    sftp.putfo(io.BytesIO(b"x"), f"{checks.RESULTS}/{newest}-report.txt")
                with pytest.raises(PermissionError):
                    sftp.putfo(io.BytesIO(b"x"), f"{checks.RESULTS}/mine.txt")
                with pytest.raises(PermissionError):
                    sftp.mkdir("/check/results/sub")
                sftp.remove(f"{checks.RESULTS}/{newest}-problems.csv")
                return sorted(sftp.listdir(checks.RESULTS))

        listing = await asyncio.to_thread(client)
        assert f"{newest}-problems.csv" not in listing
        await asyncio.to_thread(
            checks.check_set, served.port, tenant, PASSWORD, District("acme", 30).files()
        )
        results = await results_of(served, tenant, 4)
        assert f"{newest}-problems.csv" not in results  # deleted stays deleted
        assert f"{newest}-report.txt" in results


@SQLITE_ONLY
async def test_the_problem_report_is_formula_safe(served: Served) -> None:
    tenant = served.add_tenant("acme")
    files = District("acme", students=6).files()
    rows = list(csv.reader(io.StringIO(files["students.csv"].decode())))
    rows[1][rows[0].index("grade")] = "=HYPERLINK(1)"
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    files["students.csv"] = out.getvalue().encode()
    await asyncio.to_thread(checks.check_set, served.port, tenant, PASSWORD, files)

    results = await results_of(served, tenant)
    [row] = checks.check_rows(served.db, tenant)
    report = results[f"{row['results_name']}-problems.csv"].decode()
    [bad] = [r for r in csv.reader(io.StringIO(report)) if r[1] == "bad_grade"]
    assert bad[2:5] == ["students.csv", "2", "grade"]
    assert bad[5] == "'=HYPERLINK(1)"


@SQLITE_ONLY
async def test_results_are_emailed_when_the_district_asks(served: Served) -> None:
    from daemon.store import checks as check_store
    from daemon.store import tenants

    tenant = served.add_tenant("acme")
    with served.db.write() as conn:
        check_store.set_email_results(conn, tenants.get(conn, tenant).id, True)
    await asyncio.to_thread(
        checks.check_set, served.port, tenant, PASSWORD, District("acme", 8).files()
    )
    await results_of(served, tenant)
    [email] = drop.emails(served.db, "check_results")
    assert email["import_id"] is None
    message = _message(served, email["id"])
    assert message["Subject"] == f"Check Results: {tenant} check #1 — import"
    assert message["To"] == f"admin@{tenant}.example.org"
    text = message.get_body(("plain",)).get_content()
    assert "would be IMPORTED" in text
    assert "WHAT AN IMPORT WOULD CHANGE" in text
    assert "/check/results/" in text
    await served.wait(
        lambda: drop.emails(served.db, "check_results")[0]["state"] == "sent" or None,
        "the Check Results email to be delivered",
    )


def _message(served: Served, email_id: int) -> EmailMessage:
    import sqlalchemy as sa

    from daemon.store.tables import outbox

    with served.db.read() as conn:
        raw = conn.execute(sa.select(outbox.c.message).where(outbox.c.id == email_id)).scalar()
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    return parsed


@SQLITE_ONLY
async def test_a_check_supersedes_no_paused_import(served: Served) -> None:
    tenant = served.add_tenant("acme")
    await asyncio.to_thread(served.upload, tenant, District("acme", students=40).files())
    await served.imports_ended(tenant)
    await asyncio.to_thread(served.upload, tenant, District("acme", students=10).files())
    paused = await served.wait(
        lambda: [r for r in drop.import_rows(served.db, tenant) if r["state"] == "paused"] or None,
        "the second import to pause",
    )
    # A newer snapshot in /check: an upload of it would supersede the paused import; a check
    # of it leaves the import waiting for its person.
    await asyncio.to_thread(
        checks.check_set, served.port, tenant, PASSWORD, District("acme", students=40).files()
    )
    results = await results_of(served, tenant)
    [row] = checks.check_rows(served.db, tenant)
    assert checks.answer(results, row["results_name"])["outcome"] == "import"
    assert [r["state"] for r in drop.import_rows(served.db, tenant)] == ["imported", "paused"]
    assert [r["id"] for r in drop.import_rows(served.db, tenant)][-1] == paused[0]["id"]
    assert sorted(e["kind"] for e in drop.emails(served.db)) == [
        "check_your_data", "import_results",
    ]  # fmt: skip
