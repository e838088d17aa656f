"""Issue 15 (OneRoster) end to end through `rosterdrop serve`: a district whose SIS exports
OneRoster CSV drops its set over SFTP — loose files, then one zip of a newer 1.2 set — and
the roster, the import history, the emails and `imports list` say what happened, on SQLite
and on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from daemon.store.tables import outbox
from tests.support.oneroster import PASSWORD as CSV_PASSWORD
from tests.support.oneroster import csv_bytes, set_files, zip_folder
from tests.support.process import wait_until
from tests.support.site import Site, upload


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def site(request: pytest.FixtureRequest, make_site: Callable[..., Site]) -> Site:
    if request.param == "sqlite":
        return make_site()
    url: str = request.getfixturevalue("postgres_url")
    return make_site(ROSTERDROP_DATABASE_URL=url)


def ended(site: Site, tenant: str, count: int) -> list[dict[str, Any]]:
    return wait_until(
        lambda: (
            (rows := site.imports(tenant))
            and len([r for r in rows if r["archived_at"]]) >= count
            and rows
        ),
        30,
        f"{count} import(s) to end",
    )


def result_email(site: Site, import_id: int) -> str:
    with site.db() as db, db.read() as conn:
        raw = conn.execute(
            sa.select(outbox.c.message).where(
                outbox.c.import_id == import_id, outbox.c.kind == "import_results"
            )
        ).scalar_one()
    message = message_from_bytes(raw, policy=policy.default)
    body = message.get_body(("plain",))  # type: ignore[attr-defined]
    assert body is not None
    return str(body.get_content())


def test_a_oneroster_district_uploads_loose_files_then_a_zip(site: Site, tmp_path: Path) -> None:
    site.add_tenant("sakura", "admin@sakura.example")
    with site.daemon() as daemon:
        daemon.ready()
        # The manifest first: until every file it lists as bulk is there, nothing is claimed.
        upload(daemon.sftp_port, "sakura", set_files("1.1"))
        first = ended(site, "sakura", 1)[0]
        assert (first["state"], first["source_format"]) == ("imported", "oneroster")
        roster = site.roster("sakura")
        assert {s["school_id"] for s in roster["schools"]} == {"SCH1", "SCH2"}
        assert {(s["student_id"], s["first_name"], s["last_name"]) for s in roster["students"]} >= {
            ("S1", "陽菜", "高橋"),
            ("S4", "Zoë", '"Zee" Müller'),
        }
        assert sorted((t["school_id"], t["teacher_id"]) for t in roster["teachers"]) == [
            ("SCH1", "T100"), ("SCH1", "T200"), ("SCH2", "T200"), ("SCH2", "T300"),
        ]  # fmt: skip
        links = {
            (k["section_id"], k["teacher_id"], k["position"]) for k in roster["section_teachers"]
        }
        assert ("CL1", "T100", 1) in links  # primary=true first, although listed second
        assert ("CL1", "T200", 2) in links
        text = result_email(site, first["id"])
        assert "Format:    OneRoster CSV" in text
        assert "users.csv (students)" in text

        # A newer 1.2 export as one zip, with S2 gone from it (and their enrollment): the
        # snapshot deactivates them, as a Clever upload would.
        newer = set_files("1.2")
        for name in ("users.csv", "roles.csv", "enrollments.csv"):
            rows = [line for line in newer[name].decode().split("\r\n") if '"S2"' not in line]
            newer[name] = "\r\n".join(rows).encode()
        folder = tmp_path / "export"
        folder.mkdir()
        for name, data in newer.items():
            (folder / name).write_bytes(data)
        zipped = zip_folder(folder, tmp_path / "sakura-oneroster.zip", prefix="export/")
        upload(daemon.sftp_port, "sakura", {"sakura-oneroster.zip": zipped.read_bytes()})
        second = ended(site, "sakura", 2)[1]
        assert (second["state"], second["source_format"]) == ("imported", "oneroster")
        assert second["counts"]["students"]["deactivated"] == 1
        assert second["counts"]["enrollments"]["deactivated"] == 1
        assert "S2" not in {s["student_id"] for s in site.roster("sakura")["students"]}
        assert list(site.settings.paths.upload_dir("sakura").iterdir()) == []

        listed = site.cli("imports", "list", "--tenant", "sakura")
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.count("OneRoster CSV") == 2
        shown = json.loads(site.cli("imports", "show", str(second["id"]), "--json").stdout)
        assert shown["source_format"] == "oneroster"
        assert daemon.stop() == 0
    # The password column of users.csv and userProfiles.csv was never stored anywhere.
    with site.db() as db, db.read() as conn:
        for table in ("students", "teachers", "import_problems"):
            rows = conn.execute(sa.text(f"SELECT * FROM {table}")).all()  # noqa: S608
            assert CSV_PASSWORD not in json.dumps([list(r) for r in rows], default=str)


def test_a_delta_set_is_refused_with_a_clear_reason(site: Site) -> None:
    site.add_tenant("delta", "admin@delta.example")
    files = set_files("1.1")
    text = files["manifest.csv"].decode().replace('"file.users","bulk"', '"file.users","delta"')
    files["manifest.csv"] = text.encode()
    assert files["manifest.csv"] != set_files("1.1")["manifest.csv"]
    with site.daemon() as daemon:
        daemon.ready()
        upload(daemon.sftp_port, "delta", files)
        row = ended(site, "delta", 1)[0]
        assert daemon.stop() == 0
    assert row["state"] == "failed"
    assert row["fatal_reason"].startswith("manifest.csv column file.users: file.users is delta")
    assert site.roster("delta")["students"] == []
    assert csv_bytes([["x"]]) == b'"x"\r\n'  # the fixtures' quoting, as the SIS writes it
