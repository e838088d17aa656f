"""The outbox table's operations on a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.errors import Conflict, NotFound
from daemon.notify.messages import OutgoingEmail
from daemon.store import outbox
from daemon.store.database import Database
from daemon.store.outbox import OutboxState

NOW = datetime(2024, 5, 2, 14, 0, tzinfo=UTC)
EMAIL = OutgoingEmail("import_results", "Import Results", ("a@x.example",), b"Subject: x\r\n\r\nhi")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path}/db.sqlite")
    database.upgrade()
    yield database
    database.close()


def enqueue(db: Database, email: OutgoingEmail = EMAIL, now: datetime = NOW) -> int:
    with db.write() as conn:
        return outbox.enqueue(conn, email, tenant_id=None, import_id=7, now=now)


def test_enqueued_message_is_due_and_round_trips(db: Database) -> None:
    message_id = enqueue(db)

    with db.read() as conn:
        (due,) = outbox.due(conn, NOW, 10)
        assert outbox.due(conn, NOW - timedelta(seconds=1), 10) == []
    assert due.id == message_id
    assert due.import_id == 7
    assert due.recipients == ("a@x.example",)
    assert due.message == EMAIL.message
    assert due.state is OutboxState.PENDING
    assert due.created_at == NOW
    assert due.next_attempt_at == NOW
    assert due.attempts == 0


def test_a_message_is_claimed_once(db: Database) -> None:
    message_id = enqueue(db)
    lease = NOW + timedelta(minutes=10)

    with db.write() as conn:
        assert outbox.claim(conn, message_id, NOW, lease)
        assert not outbox.claim(conn, message_id, NOW, lease)
        assert outbox.due(conn, NOW, 10) == []
        # After the lease a crashed sender's message is due again.
        assert outbox.claim(conn, message_id, lease, lease + timedelta(minutes=10))
        assert outbox.get(conn, message_id).attempts == 2


def test_sent_retry_and_failed_are_recorded(db: Database) -> None:
    first, second, third = enqueue(db), enqueue(db), enqueue(db)
    later = NOW + timedelta(minutes=5)

    with db.write() as conn:
        outbox.mark_sent(conn, first, NOW, "refused: b@x.example (550 no such user)")
        outbox.mark_retry(conn, second, later, "421 try later")
        outbox.mark_failed(conn, third, "550 rejected")
        sent, retried, failed = (outbox.get(conn, i) for i in (first, second, third))

    assert (sent.state, sent.sent_at, sent.last_error) == (
        OutboxState.SENT,
        NOW,
        "refused: b@x.example (550 no such user)",
    )
    assert (retried.state, retried.next_attempt_at, retried.last_error) == (
        OutboxState.PENDING,
        later,
        "421 try later",
    )
    assert (failed.state, failed.last_error) == (OutboxState.FAILED, "550 rejected")


def test_no_recipients_is_kept_as_failed(db: Database) -> None:
    message_id = enqueue(db, OutgoingEmail("import_results", "s", (), b"x"))

    with db.read() as conn:
        message = outbox.get(conn, message_id)
        assert outbox.due(conn, NOW, 10) == []
    assert message.state is OutboxState.FAILED
    assert message.last_error == "no recipients"


def test_list_newest_first_and_by_state(db: Database) -> None:
    ids = [enqueue(db) for _ in range(3)]
    with db.write() as conn:
        outbox.mark_failed(conn, ids[1], "550")

    with db.read() as conn:
        assert [m.id for m in outbox.list_messages(conn)] == ids[::-1]
        assert [m.id for m in outbox.list_messages(conn, "failed")] == [ids[1]]
        assert [m.id for m in outbox.list_messages(conn, "pending", limit=1)] == [ids[2]]
        with pytest.raises(ValueError, match="'bogus'"):
            outbox.list_messages(conn, "bogus")


def test_operator_retry(db: Database) -> None:
    failed, sent = enqueue(db), enqueue(db)
    with db.write() as conn:
        outbox.mark_failed(conn, failed, "550")
        outbox.mark_sent(conn, sent, NOW)
    later = NOW + timedelta(hours=1)

    with db.write() as conn:
        outbox.retry(conn, failed, later)
        again = outbox.get(conn, failed)
        with pytest.raises(Conflict, match="already sent"):
            outbox.retry(conn, sent, later)
        with pytest.raises(NotFound):
            outbox.retry(conn, 999, later)
    assert (again.state, again.next_attempt_at) == (OutboxState.PENDING, later)


def test_depth_counts_pending_and_the_oldest_age(db: Database) -> None:
    with db.read() as conn:
        assert outbox.depth(conn, NOW) == (0, 0.0)
    enqueue(db, now=NOW)
    enqueue(db, now=NOW + timedelta(seconds=30))
    sent = enqueue(db, now=NOW - timedelta(hours=1))
    with db.write() as conn:
        outbox.mark_sent(conn, sent, NOW)

    with db.read() as conn:
        assert outbox.depth(conn, NOW + timedelta(seconds=90)) == (2, 90.0)
        assert outbox.next_due_at(conn) == NOW


def test_naive_times_are_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        enqueue(db, now=datetime(2024, 5, 2, 14, 0))
