"""An operator manages a district's SFTP login with `rosterdrop tenant passwd / disable / enable`
while `rosterdrop serve` runs on the same data directory: each change holds from the next login,
with no restart or reload. The daemon's log says where each login came from."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Callable, Iterator

import paramiko
import pytest

from tests.support.process import Daemon
from tests.support.site import PASSWORD, Site

NEW_PASSWORD = "a-new-password-for-acme-2"
# Every refused login below counts towards the ban a brute force earns: not these few.
LENIENT = {"ROSTERDROP_SFTP_MAX_AUTH_FAILURES": "100"}


@contextlib.contextmanager
def sftp_from(
    source: str, port: int, username: str, password: str
) -> Iterator[paramiko.SFTPClient]:
    """An SFTP session opened from the loopback address `source` (blocking)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    transport = paramiko.Transport(sock)
    try:
        transport.connect(username=username, password=password)
        client = paramiko.SFTPClient.from_transport(transport)
        assert client is not None
        with client:
            yield client
    finally:
        transport.close()


def logs_in(daemon: Daemon, password: str, source: str = "127.0.0.1") -> bool:
    """Whether the district's scheduler gets in (and sees its folder) with this password."""
    try:
        with sftp_from(source, daemon.sftp_port, "acme", password) as sftp:
            return sorted(sftp.listdir("/")) == ["check", "upload"]
    except paramiko.AuthenticationException:
        return False


def run(site: Site, *args: str, stdin: str | None = None) -> str:
    result = site.cli(*args, stdin=stdin)
    assert result.returncode == 0, result.stderr
    return str(result.stdout)


@pytest.fixture
def site(make_site: Callable[..., Site]) -> Site:
    site = make_site(**LENIENT)
    site.add_tenant("acme", "admin@acme.example.org")
    return site


@pytest.mark.slow
def test_passwd_disable_and_enable_hold_from_the_next_login(site: Site) -> None:
    with site.daemon() as daemon:
        daemon.ready()
        assert logs_in(daemon, PASSWORD)

        changed = run(site, "tenant", "passwd", "acme", "--password-stdin", stdin=NEW_PASSWORD)
        assert "password of acme changed" in changed
        assert NEW_PASSWORD not in changed
        assert not logs_in(daemon, PASSWORD)
        assert logs_in(daemon, NEW_PASSWORD)

        generated = run(site, "tenant", "passwd", "acme")
        [password] = [line.split()[2] for line in generated.splitlines() if "new password:" in line]
        assert len(password) >= 16
        assert not logs_in(daemon, NEW_PASSWORD)
        assert logs_in(daemon, password)

        assert "acme is disabled" in run(site, "tenant", "disable", "acme")
        assert not logs_in(daemon, password)
        assert json.loads(run(site, "tenant", "show", "acme", "--json"))["disabled"] is True

        assert "acme is enabled" in run(site, "tenant", "enable", "acme")
        assert logs_in(daemon, password)
        assert daemon.stop() == 0

    refused = daemon.find("sftp.login.failed", user="acme", method="password")
    assert len(refused) == 3  # the two old passwords, and the right one while disabled
    assert len(daemon.find("sftp.login.succeeded", tenant="acme")) == 4
    assert daemon.find("sftp.login.banned") == []


def test_login_log_lines_name_the_peer_address(site: Site) -> None:
    with site.daemon() as daemon:
        daemon.ready()
        assert not logs_in(daemon, "not-the-password", source="127.0.0.2")
        assert logs_in(daemon, PASSWORD, source="127.0.0.3")
        assert daemon.stop() == 0

    [failed] = daemon.find("sftp.login.failed")
    assert (failed["peer"], failed["user"], failed["method"]) == ("127.0.0.2", "acme", "password")
    [succeeded] = daemon.find("sftp.login.succeeded")
    assert (succeeded["peer"], succeeded["tenant"]) == ("127.0.0.3", "acme")
    assert succeeded["method"] == "password"
    [closed] = daemon.find("sftp.session.closed")
    assert closed["peer"] == "127.0.0.3"
    logged = daemon.log.read_text(encoding="utf-8")
    assert PASSWORD not in logged
    assert "not-the-password" not in logged
