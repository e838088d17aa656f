"""Issue 4 end to end through `rosterdrop serve`: uploads over SFTP become emails at a real SMTP
relay (aiosmtpd on loopback) — Import Results, Check Your Data, Incomplete upload — and an
email survives a relay outage and a daemon restart, delivered exactly once.

The first test runs the compose file's database and mail settings (Dockerfile ENV + the compose
file's environment, hosts and ports swapped for this machine's servers) with the suite's quick
timings; test_ops_container runs the compose configuration as written, timings and all.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage

import pytest

from tests.support.container import compose_here
from tests.support.drop import District, roster_ids
from tests.support.process import Relay, free_port, wait_until
from tests.support.site import PASSWORD, Site, upload

ADMIN = "admin@acme.example.org"
OPS = "ops@example.org"
SCRIPT = '<script>alert("pwned")</script>'
IMG = "<img src=x onerror=alert(1)>"


@pytest.fixture
def relay() -> Iterator[Relay]:
    server = Relay().start()
    yield server
    server.stop()


def hostile(district: District) -> dict[str, bytes]:
    """The district's files with grades, and two rows whose values attack the HTML and the
    headers of the emails that quote them (both are row errors: the first student's only
    login is that email)."""
    files = district.files()
    rows = list(csv.reader(io.StringIO(files["students.csv"].decode())))
    assert rows[0][-3:] == ["username", "student_email", "grade"]
    rows = [rows[0], *([*row[:-1], "05"] for row in rows[1:])]
    school = district.schools[0]
    last = "O'Brien\r\nBcc: victim@evil.example"  # reported by its lines, quoted nowhere
    rows.append([school, "acme-X1", SCRIPT, last, "", IMG, "05"])
    rows.append([SCRIPT, "acme-X2", "Eve", "Evil", "x2", "", "05"])
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return files | {"students.csv": out.getvalue().encode()}


def parts(message: EmailMessage) -> tuple[str, str, list[tuple[str, str]]]:
    """The plain text, the HTML and the attachments (name, text) of a delivered email."""
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None
    assert html is not None
    alternative = next(p for p in message.walk() if p.get_content_type() == "multipart/alternative")
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]
    attached = [(str(a.get_filename()), str(a.get_content())) for a in message.iter_attachments()]
    return str(text.get_content()), str(html.get_content()), attached


def assert_safe(message: EmailMessage, recipients: list[str]) -> None:
    """No value from a CSV became a header, a recipient or markup."""
    assert message["Bcc"] is None
    assert "victim" not in " ".join(recipients)
    assert message["To"] == ADMIN
    assert message["Auto-Submitted"] == "auto-generated"


@pytest.mark.postgres
def test_compose_settings_import_results_check_your_data_and_approve(
    make_site: Callable[..., Site], postgres_url: str, relay: Relay
) -> None:
    site = make_site(**compose_here(postgres_url, relay.port), ROSTERDROP_SMTP_COPY_TO=OPS)
    site.add_tenant("acme", ADMIN)
    first, second = District("acme", students=40), District("acme", students=30)

    with site.daemon() as daemon:
        daemon.ready()

        # Five files → Import Results.
        upload(daemon.sftp_port, "acme", first.files())
        results = relay.wait_for("Import Results: acme import #1")
        [(envelope, _)] = relay.messages()
        assert sorted(envelope) == sorted([ADMIN, OPS]), "the operator's copy is blind"
        assert results["Subject"] == "Import Results: acme import #1 — imported"
        assert results["From"] == "rosterdrop@example.org"
        assert (results["X-Rosterdrop-Tenant"], results["X-Rosterdrop-Import"]) == ("acme", "1")
        assert_safe(results, envelope)
        text, html, attached = parts(results)
        assert "The import finished and the roster is up to date." in text
        assert "students.csv" in text
        assert "students.csv" in html
        assert attached == []  # no problems, nothing to attach

        # A quarter of the students gone, and two hostile rows → paused: Check Your Data.
        upload(daemon.sftp_port, "acme", hostile(second))
        paused = relay.wait_for("Check Your Data: acme import #2")
        assert paused["Subject"] == "Check Your Data: acme import #2 is paused"
        envelope = relay.messages()[1][0]
        assert_safe(paused, envelope)
        text, html, attached = parts(paused)
        assert "rosterdrop imports approve 2" in text
        assert "rosterdrop imports reject 2" in text
        assert "rosterdrop imports approve 2" in html
        assert "25.0%" in text
        assert "10%" in text
        assert SCRIPT not in html
        assert IMG not in html
        assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html
        [(name, report)] = attached
        assert name == "import-2-problems.csv"
        assert [r["code"] for r in csv.DictReader(io.StringIO(report.lstrip("\ufeff")))] == [
            "line_break_in_value", "bad_email", "unknown_school",
        ]  # fmt: skip
        assert len(roster_ids(site.roster("acme"), "students", "student_id")) == 40

        # The operator approves it: the import is applied and Import Results follows.
        approved = site.cli("imports", "approve", "2", "--by", "ops")
        assert approved.returncode == 0, approved.stderr
        results = relay.wait_for("Import Results: acme import #2", seconds=30)
        assert results["Subject"] == "Import Results: acme import #2 — imported with errors"
        envelope = relay.messages()[2][0]
        assert_safe(results, envelope)
        text, html, attached = parts(results)
        assert SCRIPT not in html
        assert IMG not in html
        [(name, report)] = attached
        assert name == "import-2-problems.csv"
        rows = list(csv.DictReader(io.StringIO(report.lstrip("\ufeff"))))
        assert len(rows) == 3
        assert rows[1]["value"] == IMG, "the CSV keeps the raw value"
        assert SCRIPT in rows[2]["value"]
        assert roster_ids(site.roster("acme"), "students", "student_id") == set(
            second.student_ids()
        )
        assert daemon.stop() == 0
    assert len(relay.messages()) == 3
    # The log names tenants and imports, and never holds a password or a file's content.
    logged = daemon.log.read_text(encoding="utf-8")
    assert PASSWORD not in logged
    assert "pwned" not in logged
    assert "onerror" not in logged
    assert all("tenant" in line for line in daemon.lines() if "import_id" in line)
    sent = [(line["tenant"], line["import_id"]) for line in daemon.find("notify.email_sent")]
    assert sent == [("acme", 1), ("acme", 2), ("acme", 2)]


def test_an_outage_and_a_restart_lose_no_email_and_send_none_twice(
    make_site: Callable[..., Site],
) -> None:
    """The relay is down when acme's import ends and while beta's partial upload goes stale;
    the daemon restarts; then the relay comes up: each email arrives, once."""
    relay = Relay(free_port())  # its port is chosen, but nothing listens there yet
    site = make_site(
        ROSTERDROP_SMTP_HOST="127.0.0.1", ROSTERDROP_SMTP_PORT=str(relay.port),
        ROSTERDROP_SMTP_TLS="none", ROSTERDROP_SPOOL_STALE_HOURS="0.0003",  # about 1 s
    )  # fmt: skip
    site.add_tenant("acme", ADMIN)
    site.add_tenant("beta", "admin@beta.example.org")
    files = District("beta").files()
    partial = {name: files[name] for name in ("schools.csv", "students.csv", "teachers.csv")}

    with site.daemon("down") as daemon:
        daemon.ready()
        upload(daemon.sftp_port, "acme", District("acme").files())
        upload(daemon.sftp_port, "beta", partial)
        wait_until(lambda: len(site.emails()) == 2, 30, "the import and the stale upload")
        wait_until(lambda: daemon.find("notify.email_deferred"), 30, "a failed delivery")
        assert daemon.stop() == 0
    assert {e["state"] for e in site.emails()} == {"pending"}

    try:
        with site.daemon("restarted") as daemon:
            daemon.ready()
            relay.start()
            wait_until(lambda: len(relay.messages()) == 2, 30, "both deliveries")
            wait_until(
                lambda: {e["state"] for e in site.emails()} == {"sent"}, 10, "both marked sent"
            )
            time.sleep(1.5)  # rescans (0.3 s), stale periods (1 s) and a retry backoff (1 s)
            assert daemon.stop() == 0
    finally:
        relay.stop()

    assert [e["kind"] for e in site.emails()] == ["import_results", "incomplete_upload"]
    (to_acme, results), (to_beta, incomplete) = sorted(relay.messages())
    assert (to_acme, results["Subject"]) == ([ADMIN], "Import Results: acme import #1 — imported")
    assert to_beta == ["admin@beta.example.org"]
    assert incomplete["Subject"] == "Incomplete upload: beta — 2 files missing"
    text, html, attached = parts(incomplete)
    for name in ("sections.csv", "enrollments.csv", "schools.csv", "students.csv"):
        assert name in text
        assert name in html
    assert attached == []
    assert [r["tenant"] for r in site.imports()] == ["acme"]
