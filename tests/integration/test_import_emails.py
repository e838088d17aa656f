"""The emails a district reads after real imports through the pipeline and the database: what a
skipped row did to its record, and, when an administrator decides about a paused import hours
later, who decided and when, and how long the import worked rather than how long it waited."""

from __future__ import annotations

import copy
import email
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path

import sqlalchemy as sa

from daemon.config import Settings
from daemon.pipeline import Pipeline
from daemon.roster.outcome import ImportState
from daemon.store.database import Database
from daemon.store.tables import outbox
from tests.support.clever import Snapshot, one_class_district
from tests.support.roster import add_tenant, run_import, set_tenant

MONDAY = datetime(2026, 9, 7, 6, 0, tzinfo=UTC)


class Clock:
    """The pipeline's time, moved on by the test: each run takes no time of its own."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def with_nameless_student(snap: Snapshot) -> Snapshot:
    """The same district with its last student (not enrolled) without a first name."""
    out = copy.deepcopy(snap)
    key = list(out.students)[-1]
    out.students[key] = ("", *out.students[key][1:])
    return out


def test_a_skipped_row_of_a_known_student_is_reported_held_not_left_vaguely(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    add_tenant(db, "acme")
    pipeline = Pipeline(db, settings.paths, settings.smtp, clock=Clock(MONDAY))
    run_import(pipeline, "acme", one_class_district(10).write(tmp_path / "first"))

    paused = run_import(
        pipeline, "acme", with_nameless_student(one_class_district(10)).write(tmp_path / "second")
    )

    assert paused.state is ImportState.PAUSED
    text, _ = last_email(db, paused.import_id)
    assert "- all files: 1 row with errors of 14 read (7.1%; this district allows 0)" in text
    assert (
        "- 1 row with errors would not be imported whole. 1 student would be held: kept as it is."
        " The first problems are listed below"
    ) in text
    assert "left as they are" not in text

    set_tenant(db, "acme", max_row_errors=1)
    ended = run_import(
        pipeline, "acme", with_nameless_student(one_class_district(10)).write(tmp_path / "third")
    )

    assert ended.state is ImportState.IMPORTED_WITH_ERRORS
    text, html = last_email(db, ended.import_id)
    assert text.splitlines()[1] == (
        "1 row with errors was not imported whole. 1 student was held: kept as it was."
        " Everything else is in the roster."
    )
    students = text.split("students.csv: 10 rows read", 1)[1].split("\n\n", 1)[0]
    assert re.search(r"held\s+1\s+10\.0%", students)
    assert re.search(r"errors\s+1\s+10\.0%", students)
    assert ">Held</th>" in html


def paused_import(db: Database, settings: Settings, tmp_path: Path) -> tuple[Pipeline, Clock, int]:
    """Acme's roster of 50 students, then an upload without 6 of them: paused at 06:00."""
    add_tenant(db, "acme")
    clock = Clock(MONDAY - timedelta(days=1))
    pipeline = Pipeline(db, settings.paths, settings.smtp, clock=clock)
    assert run_import(pipeline, "acme", one_class_district(50).write(tmp_path / "first")).state is (
        ImportState.IMPORTED
    )
    smaller = copy.deepcopy(one_class_district(50))
    for key in list(smaller.students)[-6:]:
        del smaller.students[key]
    clock.now = MONDAY
    paused = run_import(pipeline, "acme", smaller.write(tmp_path / "second"))
    assert paused.state is ImportState.PAUSED
    return pipeline, clock, paused.import_id


def last_email(db: Database, import_id: int) -> tuple[str, str]:
    """The plain text and HTML of the newest email about the import, as the outbox holds it."""
    query = sa.select(outbox.c.message).where(outbox.c.import_id == import_id)
    with db.read() as conn:
        raw = conn.execute(query.order_by(outbox.c.id.desc()).limit(1)).scalar_one()
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None
    assert html is not None
    return str(text.get_content()).replace("\r\n", "\n"), str(html.get_content())


def test_import_results_after_an_approval_say_who_approved_and_count_only_the_work(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    pipeline, clock, import_id = paused_import(db, settings, tmp_path)

    clock.now = MONDAY + timedelta(hours=2, minutes=15)  # the administrator gets to it at 08:15
    report = pipeline.approve(import_id, by="registrar@acme.example.org")

    assert report.state is ImportState.IMPORTED
    assert report.decided_at == clock.now
    text, html = last_email(db, import_id)
    assert text.splitlines()[1] == (
        "registrar@acme.example.org approved it on 2026-09-07 08:15 UTC, after it paused."
    )
    assert "Decided:   approved by registrar@acme.example.org, 2026-09-07 08:15 UTC" in text
    assert (
        "Finished:  2026-09-07 08:15 UTC"
        " (took under a second, not counting 2 h 15 min waiting for a decision)"
    ) in text
    assert "approved by registrar@acme.example.org, 2026-09-07 08:15 UTC" in html
    assert "took 2 h" not in text


def test_a_rejection_says_who_rejected_the_import_and_when(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    pipeline, clock, import_id = paused_import(db, settings, tmp_path)

    clock.now = MONDAY + timedelta(days=1, minutes=30)
    assert pipeline.reject(import_id, by="registrar@acme.example.org").state is (
        ImportState.REJECTED
    )

    text, _ = last_email(db, import_id)
    assert text.splitlines()[:2] == [
        "registrar@acme.example.org rejected this import on 2026-09-08 06:30 UTC.",
        "Nothing in the roster was changed.",
    ]
    assert "Decided:   rejected by registrar@acme.example.org, 2026-09-08 06:30 UTC" in text


def test_with_a_public_url_the_emails_link_to_the_imports_page(
    db: Database, make_settings: Callable[..., Settings], database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, ROSTERDROP_WEB_PUBLIC_URL="https://roster.example.org/")
    pipeline, _, import_id = paused_import(db, settings, tmp_path)
    link = f"https://roster.example.org/imports/{import_id}"

    text, html = last_email(db, import_id)  # Check Your Data
    assert f"Review it here: {link}" in text
    assert f'<a href="{link}"' in html
    assert "Or, on the rosterdrop server, your operator runs one of:" in text
    assert f"rosterdrop imports approve {import_id}" in text  # the operator's fallback

    pipeline.reject(import_id, by="registrar@acme.example.org")
    text, html = last_email(db, import_id)  # Import Results
    assert f"See it in the Import Manager: {link}" in text
    assert f'<a href="{link}"' in html


def test_without_a_public_url_the_emails_carry_no_link(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    _, _, import_id = paused_import(db, settings, tmp_path)
    text, _ = last_email(db, import_id)
    assert "/imports/" not in text
    assert "On the rosterdrop server, your operator runs one of:" in text
