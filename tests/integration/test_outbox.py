"""The outbox sender against a real SMTP server (aiosmtpd) on loopback, and the .eml default."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import email
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from structlog.testing import capture_logs

from daemon.config import Secret, SmtpSettings
from daemon.metrics import REGISTRY
from daemon.notify import messages
from daemon.notify.messages import OutgoingEmail
from daemon.notify.sender import OutboxSender
from daemon.roster.outcome import FileSummary, ImportReport, ImportState
from daemon.store import outbox
from daemon.store.database import Database
from daemon.store.outbox import OutboxState

START = datetime(2024, 5, 2, 14, 0, tzinfo=UTC)


class Clock:
    """The sender's time, moved by the test: backoff is checked without waiting for it."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Sink:
    """An aiosmtpd handler that keeps every accepted message; replies can be made to fail."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []
        self.rcpt_reply: str | None = None
        self.data_reply: str | None = None
        self.lock = threading.Lock()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.rcpt_reply and not address.startswith("ok"):
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply:
            return self.data_reply
        with self.lock:
            self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"

    def messages(self) -> list[email.message.EmailMessage]:
        parsed = [email.message_from_bytes(r[2], policy=policy.default) for r in self.received]
        return [m for m in parsed if isinstance(m, email.message.EmailMessage)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path}/db.sqlite")
    database.upgrade()
    yield database
    database.close()


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def start_server(sink: Sink, port: int) -> Iterator[Any]:
    controllers: list[Controller] = []

    def start(**smtp_options: Any) -> Controller:
        controller = Controller(sink, hostname="127.0.0.1", port=port, **smtp_options)
        controller.start()
        controllers.append(controller)
        return controller

    yield start
    for controller in controllers:
        controller.stop()


def settings(port: int, **changes: Any) -> SmtpSettings:
    base = SmtpSettings(
        host="127.0.0.1",
        port=port,
        from_address="rosterdrop@example.org",
        tls="none",
        timeout=5,
        retry_initial_seconds=30,
        retry_max_seconds=600,
    )
    return dataclasses.replace(base, **changes)


def sender(
    db: Database, smtp: SmtpSettings, tmp_path: Path, clock: Clock, **kw: Any
) -> OutboxSender:
    options: dict[str, Any] = {"quick_tries": 2, "quick_wait_seconds": 0, "clock": clock, **kw}
    return OutboxSender(db, smtp, tmp_path / "outbox", **options)


def results_email(
    smtp: SmtpSettings, recipients: tuple[str, ...] = ("admin@district.example",)
) -> OutgoingEmail:
    report = ImportReport(
        import_id=12,
        tenant="springfield",
        state=ImportState.IMPORTED,
        source="sftp",
        received_at=START,
        finished_at=START + timedelta(seconds=3),
        files=(FileSummary("schools.csv", 3),),
    )
    return messages.import_results(report, recipients, smtp)


def enqueue(db: Database, outgoing: OutgoingEmail, now: datetime = START) -> int:
    with db.write() as conn:
        return outbox.enqueue(conn, outgoing, tenant_id=None, import_id=12, now=now)


def row(db: Database, message_id: int) -> outbox.OutboxMessage:
    with db.read() as conn:
        return outbox.get(conn, message_id)


async def test_delivers_the_rendered_email_to_every_recipient(
    db: Database, tmp_path: Path, port: int, sink: Sink, start_server: Any
) -> None:
    start_server()
    smtp = settings(port, copy_to=("ops@operator.example",))
    message_id = enqueue(db, results_email(smtp))

    assert await sender(db, smtp, tmp_path, Clock()).deliver_due() == 1

    ((mail_from, rcpt_tos, _),) = sink.received
    assert mail_from == "rosterdrop@example.org"
    assert rcpt_tos == ["admin@district.example", "ops@operator.example"]
    (received,) = sink.messages()
    assert received["Subject"] == "Import Results: springfield import #12 — imported"
    assert received["To"] == "admin@district.example"
    plain, html = received.get_body(("plain",)), received.get_body(("html",))
    assert plain is not None
    assert html is not None
    assert plain.get_content().startswith("The import finished and the roster is up to date.")
    assert "<table" in html.get_content()
    sent = row(db, message_id)
    assert (sent.state, sent.attempts, sent.sent_at) == (OutboxState.SENT, 1, START)
    assert REGISTRY.get_sample_value("rosterdrop_outbox_depth") == 0


async def test_smtp_down_then_up_delivers_exactly_once(
    db: Database, tmp_path: Path, port: int, sink: Sink, start_server: Any
) -> None:
    clock = Clock()
    smtp = settings(port)
    mailer = sender(db, smtp, tmp_path, clock)
    message_id = enqueue(db, results_email(smtp))

    assert await mailer.deliver_due() == 0  # nothing listens on the port yet
    waiting = row(db, message_id)
    assert waiting.state is OutboxState.PENDING
    assert waiting.attempts == 1
    assert waiting.next_attempt_at == START + timedelta(seconds=30)
    assert "127.0.0.1" in (waiting.last_error or "")
    assert REGISTRY.get_sample_value("rosterdrop_outbox_depth") == 1

    start_server()
    clock.advance(10)
    assert await mailer.deliver_due() == 0  # not due yet: the backoff holds
    clock.advance(20)
    assert await mailer.deliver_due() == 1
    assert await mailer.deliver_due() == 0
    clock.advance(3600)
    assert await mailer.deliver_due() == 0

    assert len(sink.received) == 1
    assert row(db, message_id).state is OutboxState.SENT


async def test_backoff_doubles_up_to_the_maximum(db: Database, tmp_path: Path, port: int) -> None:
    clock = Clock()
    smtp = settings(port, retry_initial_seconds=100, retry_max_seconds=300)
    mailer = sender(db, smtp, tmp_path, clock)
    message_id = enqueue(db, results_email(smtp))

    waits = []
    for _ in range(4):
        before = clock.now
        await mailer.deliver_due()
        waiting = row(db, message_id)
        waits.append((waiting.next_attempt_at - before).total_seconds())
        clock.now = waiting.next_attempt_at
    assert waits == [100, 200, 300, 300]
    assert row(db, message_id).attempts == 4


async def test_a_restart_in_between_still_delivers_once(
    tmp_path: Path, port: int, sink: Sink, start_server: Any
) -> None:
    url = f"sqlite:///{tmp_path}/db.sqlite"
    clock = Clock()
    smtp = settings(port)
    first = Database(url)
    first.upgrade()
    message_id = enqueue(first, results_email(smtp))
    assert await sender(first, smtp, tmp_path, clock).deliver_due() == 0
    first.close()  # the daemon stops while the relay is down

    start_server()
    clock.advance(60)
    second = Database(url)
    second.upgrade()
    try:
        restarted = sender(second, smtp, tmp_path, clock)
        assert await restarted.deliver_due() == 1
        assert await restarted.deliver_due() == 0
        assert row(second, message_id).attempts == 2
    finally:
        second.close()
    assert len(sink.received) == 1


async def test_two_senders_on_one_database_send_each_message_once(
    db: Database, tmp_path: Path, port: int, sink: Sink, start_server: Any
) -> None:
    start_server()
    smtp = settings(port)
    for _ in range(6):
        enqueue(db, results_email(smtp))
    clock = Clock()

    counts = await asyncio.gather(
        sender(db, smtp, tmp_path, clock).deliver_due(),
        sender(db, smtp, tmp_path, clock).deliver_due(),
    )

    assert sum(counts) == 6
    assert len(sink.received) == 6
    assert len({m["Message-ID"] for m in sink.messages()}) == 6


async def test_permanent_refusal_is_failed_and_not_retried(
    db: Database, tmp_path: Path, port: int, sink: Sink, start_server: Any
) -> None:
    start_server()
    sink.rcpt_reply = "550 5.1.1 No such user"
    clock = Clock()
    smtp = settings(port)
    mailer = sender(db, smtp, tmp_path, clock)
    message_id = enqueue(db, results_email(smtp, ("gone@district.example",)))

    assert await mailer.deliver_due() == 0
    failed = row(db, message_id)
    assert failed.state is OutboxState.FAILED
    assert failed.attempts == 1
    assert "550" in (failed.last_error or "")
    assert "gone@district.example" in (failed.last_error or "")

    sink.rcpt_reply = None
    clock.advance(7200)
    assert await mailer.deliver_due() == 0
    assert sink.received == []


async def test_one_refused_recipient_does_not_stop_the_others(
    db: Database, tmp_path: Path, port: int, sink: Sink, start_server: Any
) -> None:
    start_server()
    sink.rcpt_reply = "550 5.1.1 No such user"
    smtp = settings(port)
    message_id = enqueue(db, results_email(smtp, ("ok@district.example", "gone@district.example")))

    assert await sender(db, smtp, tmp_path, Clock()).deliver_due() == 1

    assert sink.received[0][1] == ["ok@district.example"]
    sent = row(db, message_id)
    assert sent.state is OutboxState.SENT
    assert "gone@district.example (550" in (sent.last_error or "")


async def test_temporary_refusal_waits_but_does_not_hold_other_messages(
    db: Database, tmp_path: Path, port: int, sink: Sink, start_server: Any
) -> None:
    start_server()
    sink.data_reply = "451 4.3.0 Try again later"
    smtp = settings(port)
    first, second = enqueue(db, results_email(smtp)), enqueue(db, results_email(smtp))

    assert await sender(db, smtp, tmp_path, Clock()).deliver_due() == 0

    for message_id in (first, second):
        waiting = row(db, message_id)
        assert (waiting.state, waiting.attempts) == (OutboxState.PENDING, 1)
        assert "451" in (waiting.last_error or "")


async def test_relay_down_holds_the_other_messages(db: Database, tmp_path: Path, port: int) -> None:
    smtp = settings(port)
    first, second = enqueue(db, results_email(smtp)), enqueue(db, results_email(smtp))
    clock = Clock()
    mailer = sender(db, smtp, tmp_path, clock)

    await mailer.deliver_due()
    assert row(db, first).attempts == 1
    assert row(db, second).attempts == 0  # not tried against a relay known to be down
    clock.advance(30)
    await mailer.deliver_due()
    assert row(db, second).attempts == 1


async def test_without_an_smtp_host_each_message_is_an_eml_file(
    db: Database, tmp_path: Path
) -> None:
    smtp = SmtpSettings(host="", from_address="rosterdrop@example.org")
    outgoing = results_email(smtp)
    message_id = enqueue(db, outgoing)

    with capture_logs() as lines:
        assert await sender(db, smtp, tmp_path, Clock()).deliver_due() == 1

    files = sorted((tmp_path / "outbox").iterdir())
    [written] = [line for line in lines if line["event"] == "notify.eml_written"]
    assert (written["import_id"], written["path"]) == (12, str(files[0]))
    assert [f.name for f in files] == [f"{message_id}-import_results.eml"]
    assert files[0].read_bytes() == outgoing.message
    assert files[0].stat().st_mode & 0o077 == 0  # student names: readable by the daemon only
    assert row(db, message_id).state is OutboxState.SENT


async def test_run_picks_up_wakeups_and_other_processes_then_stops(
    db: Database, tmp_path: Path, port: int, sink: Sink, start_server: Any
) -> None:
    start_server()
    smtp = settings(port)
    mailer = OutboxSender(db, smtp, tmp_path / "outbox", poll_seconds=0.2)
    task = asyncio.create_task(mailer.run())
    try:
        enqueue(db, results_email(smtp), now=datetime.now(UTC))
        mailer.wake()
        await wait_for(lambda: len(sink.received) == 1)
        # Enqueued elsewhere (the CLI, another daemon): no wake-up, the poll finds it.
        enqueue(db, results_email(smtp), now=datetime.now(UTC))
        await wait_for(lambda: len(sink.received) == 2)
        # A wake-up from another thread, as a pipeline worker thread would send it.
        enqueue(db, results_email(smtp), now=datetime.now(UTC))
        await asyncio.to_thread(mailer.wake)
        await wait_for(lambda: len(sink.received) == 3)
    finally:
        await mailer.stop(timeout=5)
    await asyncio.wait_for(task, 1)
    assert len(sink.received) == 3


class CountingSender(OutboxSender):
    """The sender, telling the test when each of its passes over the due messages ended."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.passes = 0
        self._passed = asyncio.Condition()

    async def deliver_due(self, *, flush: bool = False) -> int:
        delivered = await super().deliver_due(flush=flush)
        async with self._passed:
            self.passes += 1
            self._passed.notify_all()
        return delivered

    async def passes_done(self, count: int) -> None:
        async with asyncio.timeout(5), self._passed:
            await self._passed.wait_for(lambda: self.passes >= count)


async def test_stopping_flushes_what_became_due_meanwhile(
    db: Database, tmp_path: Path, port: int, sink: Sink, start_server: Any
) -> None:
    """The shutdown waits for the last import, whose email is then due: it goes out before
    the daemon exits, not at its next start."""
    start_server()
    smtp = settings(port)
    mailer = CountingSender(db, smtp, tmp_path / "outbox", poll_seconds=60)
    task = asyncio.create_task(mailer.run())
    await mailer.passes_done(1)  # the first pass has found nothing; the next poll is far away
    message_id = enqueue(db, results_email(smtp), now=datetime.now(UTC))  # no wake-up

    await mailer.stop(timeout=5)

    await asyncio.wait_for(task, 1)
    assert mailer.passes == 2, "the first pass, and the flush at the stop"
    assert len(sink.received) == 1
    assert row(db, message_id).state is OutboxState.SENT


async def wait_for(condition: Any, within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - the sink runs in aiosmtpd's own thread
            await asyncio.sleep(0.02)


@dataclasses.dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


@pytest.fixture
def certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Certificate:
    """A self-signed certificate for 127.0.0.1 that the client trusts as its CA bundle."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rosterdrop test relay")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    # The client verifies certificates as in production; it trusts this one the way an
    # operator trusts a private CA: through OpenSSL's SSL_CERT_FILE.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_path))
    return Certificate(cert_path, key_path)


def authenticator(logins: list[str]) -> Any:
    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"district-mailer",
            b"s3cret",
        )
        if ok:
            logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)  # unhandled: aiosmtpd replies 535

    return check


async def test_starttls_with_login(
    db: Database, tmp_path: Path, port: int, sink: Sink, start_server: Any, certificate: Certificate
) -> None:
    logins: list[str] = []
    start_server(
        tls_context=certificate.server_context(),
        require_starttls=True,
        authenticator=authenticator(logins),
        auth_required=True,
    )
    smtp = settings(port, tls="starttls", username="district-mailer", password=Secret("s3cret"))
    enqueue(db, results_email(smtp))

    assert await sender(db, smtp, tmp_path, Clock()).deliver_due() == 1
    assert logins == ["district-mailer"]
    assert len(sink.received) == 1


async def test_wrong_password_waits_for_the_operator_to_fix_it(
    db: Database, tmp_path: Path, port: int, sink: Sink, start_server: Any, certificate: Certificate
) -> None:
    start_server(
        tls_context=certificate.server_context(),
        require_starttls=True,
        authenticator=authenticator([]),
        auth_required=True,
    )
    smtp = settings(port, tls="starttls", username="district-mailer", password=Secret("wrong"))
    message_id = enqueue(db, results_email(smtp))

    assert await sender(db, smtp, tmp_path, Clock()).deliver_due() == 0
    waiting = row(db, message_id)
    assert waiting.state is OutboxState.PENDING
    assert "535" in (waiting.last_error or "")
    assert "wrong" not in (waiting.last_error or "")


async def test_implicit_tls(
    db: Database, tmp_path: Path, port: int, sink: Sink, start_server: Any, certificate: Certificate
) -> None:
    start_server(ssl_context=certificate.server_context())
    smtp = settings(port, tls="tls")
    enqueue(db, results_email(smtp))

    assert await sender(db, smtp, tmp_path, Clock()).deliver_due() == 1
    assert len(sink.received) == 1


async def test_an_untrusted_certificate_is_not_accepted(
    db: Database, tmp_path: Path, port: int, sink: Sink, start_server: Any, certificate: Certificate
) -> None:
    start_server(ssl_context=certificate.server_context())
    smtp = settings(port, tls="tls")
    message_id = enqueue(db, results_email(smtp))
    os_default = ssl.get_default_verify_paths().openssl_cafile

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SSL_CERT_FILE", os_default)
        assert await sender(db, smtp, tmp_path, Clock()).deliver_due() == 0
    assert sink.received == []
    assert "CERTIFICATE_VERIFY_FAILED" in (row(db, message_id).last_error or "")
