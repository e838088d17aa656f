"""Health and metrics over HTTP from a running daemon: exposed, and moving with what happens."""

from __future__ import annotations

import json
from collections.abc import Callable

import paramiko
import pytest

from tests.support import drop
from tests.support.drop import District
from tests.support.process import free_port, metric, notify_socket, wait_until
from tests.support.site import PASSWORD, Site


def test_health_readiness_and_metrics_move_with_sessions_uploads_imports_and_the_outbox(
    make_site: Callable[..., Site],
) -> None:
    # The relay is down for the whole test: the Import Results email waits in the outbox.
    site = make_site(ROSTERDROP_SMTP_HOST="127.0.0.1", ROSTERDROP_SMTP_PORT=str(free_port()),
                     ROSTERDROP_SMTP_TLS="none")  # fmt: skip
    site.add_tenant("acme", "admin@acme.example.org")
    district = District("acme", students=12)
    files = district.files()

    with notify_socket() as notify, site.daemon(NOTIFY_SOCKET=notify.path) as daemon:
        daemon.ready()
        assert daemon.get("/healthz") == (200, "ok\n")
        status, body = daemon.get("/readyz")
        assert (status, json.loads(body)) == (
            200,
            {"ready": True, "checks": {"sftp": True, "database": True}},
        )
        start = daemon.metrics()
        assert metric(start, "rosterdrop_sftp_sessions") == 0
        assert metric(start, "rosterdrop_outbox_depth") == 0

        # A failed login is counted.
        with (
            pytest.raises(paramiko.AuthenticationException),
            drop.sftp_session(daemon.sftp_port, "acme", "wrong-password"),
        ):
            pass
        after_failure = daemon.metrics()
        assert metric(after_failure, "rosterdrop_sftp_logins_total", result="failure") >= 1

        # An open session is counted while it lasts; the bytes it writes are counted.
        with drop.sftp_session(daemon.sftp_port, "acme", PASSWORD) as sftp:
            during = daemon.metrics()
            assert metric(during, "rosterdrop_sftp_sessions") == 1
            drop.upload(sftp, files)
        assert metric(during, "rosterdrop_sftp_logins_total", result="success") == 1

        wait_until(
            lambda: [r for r in site.imports("acme") if r["state"] == "imported"],
            30,
            "the import",
        )
        moved = wait_until(
            lambda: (
                (m := daemon.metrics())
                and metric(m, "rosterdrop_outbox_oldest_age_seconds") > 0
                and m
            ),
            20,
            "the outbox gauges to see the waiting email",
        )
        assert metric(moved, "rosterdrop_sftp_sessions") == 0
        sent = sum(map(len, files.values()))
        assert metric(moved, "rosterdrop_sftp_bytes_received_total") == sent
        assert metric(moved, "rosterdrop_sftp_uploads_total", result="published") == 5
        assert metric(moved, "rosterdrop_imports_total", state="imported") == 1
        assert metric(moved, "rosterdrop_import_duration_seconds_count") == 1
        assert metric(moved, "rosterdrop_import_duration_seconds_sum") > 0
        added = metric(moved, "rosterdrop_rows_applied_total", entity="students", change="added")
        assert added == 12
        assert metric(moved, "rosterdrop_outbox_depth") == 1
        assert metric(moved, "rosterdrop_emails_total", result="retry") >= 1
        # systemd's STATUS= line follows the imports.
        statuses = [m["STATUS"] for m in notify.drain() if "STATUS" in m]
        running = [s.rpartition("imports running: ")[2] for s in statuses if "imports" in s]
        assert running == ["1", "0"]
        assert daemon.stop() == 0
