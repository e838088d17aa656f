"""Several nodes' senders on one PostgreSQL outbox, with a relay that is slow and that drops
the connection after DATA without accepting: every email reaches the relay exactly once.

Each sender has a database engine of its own, as each node has; they run their passes at
the same time, over and over, until the outbox is empty. The leased claim (outbox.claim) is
what keeps two of them from sending one message."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from daemon.config import SmtpSettings
from daemon.notify import messages
from daemon.notify.sender import OutboxSender
from daemon.roster.outcome import FileSummary, ImportReport, ImportState
from daemon.store import outbox
from daemon.store.database import Database
from daemon.store.outbox import OutboxState
from tests.support.process import free_port

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("database_url", ["postgresql"], indirect=True),
]

SENDERS = 3
EMAILS = 12
SLOW_SECONDS = 0.2  # each DATA waits this long: the senders' passes overlap


class FlakyRelay:
    """Takes SLOW_SECONDS over each DATA; the first DATA of each message it hangs up on,
    without a reply (so the message was not accepted, and must come again)."""

    def __init__(self) -> None:
        self.accepted: list[str] = []
        self.dropped: set[str] = set()
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        message_id = str(message["Message-ID"])
        await asyncio.sleep(SLOW_SECONDS)
        with self.lock:
            first = message_id not in self.dropped
            self.dropped.add(message_id)
            if not first:
                self.accepted.append(message_id)
        if first:
            server.transport.close()  # the connection drops after DATA: no 250
            return "421 going away"
        return "250 Message accepted for delivery"


@pytest.fixture
def relay() -> Iterator[tuple[FlakyRelay, int]]:
    handler, port = FlakyRelay(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def report(import_id: int) -> ImportReport:
    now = datetime.now(UTC)
    return ImportReport(
        import_id=import_id, tenant="springfield", state=ImportState.IMPORTED, source="sftp",
        received_at=now, finished_at=now, files=(FileSummary("schools.csv", 3),),
    )  # fmt: skip


async def test_several_senders_and_a_flaky_relay_send_each_email_once(
    database_url: str, db: Database, tmp_path: Path, relay: tuple[FlakyRelay, int]
) -> None:
    handler, port = relay
    smtp = SmtpSettings(
        host="127.0.0.1", port=port, from_address="rosterdrop@example.org", tls="none",
        timeout=5, retry_initial_seconds=0.05, retry_max_seconds=0.1,
    )  # fmt: skip
    with db.write() as conn:
        for n in range(EMAILS):
            outgoing = messages.import_results(report(n + 1), ("admin@district.example",), smtp)
            outbox.enqueue(conn, outgoing, tenant_id=None, import_id=n + 1, now=datetime.now(UTC))
    nodes = [Database(database_url) for _ in range(SENDERS)]
    try:
        senders = [
            OutboxSender(node, dataclasses.replace(smtp), tmp_path / "outbox", quick_tries=1)
            for node in nodes
        ]
        sent = 0
        for _ in range(200):
            sent += sum(await asyncio.gather(*(s.deliver_due() for s in senders)))
            if sent >= EMAILS:
                break
            await asyncio.sleep(0.05)
    finally:
        for node in nodes:
            node.close()
    assert sent == EMAILS
    assert len(handler.accepted) == EMAILS
    assert len(set(handler.accepted)) == EMAILS  # none twice
    assert handler.dropped == set(handler.accepted)  # each was dropped once, then sent once
    with db.read() as conn:
        rows = outbox.list_messages(conn)
    assert {r.state for r in rows} == {OutboxState.SENT}
    assert all(r.attempts >= 2 for r in rows)
