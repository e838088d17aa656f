"""A OneRoster set through the pipeline: the import keeps the format it was claimed in, rows
that cannot be read still count, and an incomplete set's email lists what its manifest does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

from daemon import uploadset
from daemon.clever.validate import fingerprints
from daemon.config import Settings
from daemon.notify import messages
from daemon.oneroster.validate import UNPACKED_PREFIX
from daemon.pipeline import Pipeline
from daemon.roster.outcome import ImportState
from daemon.roster.problems import ProblemLog
from daemon.roster.tenant import TenantSettings
from daemon.store import tenants
from daemon.store.database import Database
from daemon.store.staging import Stage
from tests.support.oneroster import FIXTURES, check_set, set_files, write_files, zip_folder


def test_an_import_is_read_in_the_format_it_was_claimed_in(
    settings: Settings, db: Database
) -> None:
    pipeline = Pipeline(db, settings.paths, settings.smtp)
    with db.write() as conn:
        tenant = tenants.add(conn, "sakura", emails=["a@sakura.example"], now=datetime.now(UTC))
    import_id = pipeline.receive(
        tenant, uploadset.find(FIXTURES / "v1.1"), source="cli", move=False
    )
    with db.write() as conn:  # the operator pins the tenant to Clever before it runs
        tenants.update(conn, "sakura", settings=tenant.settings.updated(input_format="clever"))
    report = pipeline.run(import_id)
    assert (report.state, report.source_format) == (ImportState.IMPORTED, "oneroster")
    assert report.entities["students"].added == 4
    again = pipeline.receive(tenant, uploadset.find(FIXTURES / "v1.1"), source="cli", move=False)
    assert pipeline.run(again).problems[-1].code == "identical_upload"  # read as OneRoster too


def test_a_row_that_cannot_be_read_counts_as_an_error_of_its_file(tmp_path: Path) -> None:
    files = set_files("1.1")
    files["users.csv"] += b'"S9","x"\r\n'
    files["enrollments.csv"] += b'"E99"\r\n'
    checked = check_set(write_files(tmp_path / "set", files))
    assert [c for c in checked.codes() if c[0] == "error"] == [
        ("error", "users.csv", 10, None, "wrong_field_count"),
        ("error", "enrollments.csv", 11, None, "wrong_field_count"),
    ]
    summary = checked.validation.files
    assert (summary["users.csv (other roles)"].rows, summary["users.csv (other roles)"].errors) == (
        2,
        1,
    )
    others = summary["enrollments.csv (other roles)"]
    assert (others.rows, others.errors) == (1, 1)
    assert checked.validation.rows_read == sum(f.rows for f in summary.values())


def test_an_incomplete_oneroster_set_is_told_what_its_manifest_lists(settings: Settings) -> None:
    outgoing = messages.incomplete_upload(
        "sakura", ["manifest.csv", "orgs.csv"], ["users.csv"],
        datetime.now(UTC) - timedelta(hours=25), ["a@sakura.example"], settings.smtp,
    )  # fmt: skip
    message = message_from_bytes(outgoing.message, policy=policy.default)
    text = message.get_body(("plain",)).get_content()  # type: ignore[attr-defined]
    assert "holds only 2 of the 3 files" in text
    assert "all 3 files each time: manifest.csv, orgs.csv, users.csv" in text


def test_a_zip_is_unpacked_beside_it_and_what_a_crash_left_is_removed(tmp_path: Path) -> None:
    folder = tmp_path / "spool" / "7"
    folder.mkdir(parents=True)
    zipped = zip_folder(FIXTURES / "v1.1", folder / "roster.zip")
    (folder / f"{UNPACKED_PREFIX}crashed").mkdir()
    (folder / f"{UNPACKED_PREFIX}crashed" / "users.csv").write_bytes(b"left behind")
    found = uploadset.find(folder)
    assert found.files == {"zip": zipped}
    db = Database("sqlite://")
    try:
        with db.read() as conn:
            stage = Stage(conn)
            validation = uploadset.validate(
                found, fingerprints(found), TenantSettings(), ProblemLog(), stage, scratch=folder
            )
            stage.close()
    finally:
        db.close()
    assert not validation.fatal
    assert sorted(p.name for p in folder.iterdir()) == ["roster.zip"]
