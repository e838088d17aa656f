"""Strangers guessing a district's password cannot lock the district out: `rosterdrop serve` with
its default throttling bans the guessing addresses, never the username, and an operator can lift
a ban (`tenant unban`) or keep every stranger away (`tenant set --allow-from`)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable
from pathlib import Path

import paramiko
import pytest

from tests.support.process import Daemon, wait_until
from tests.support.site import PASSWORD, Site

# The defaults (5 failures per source in 300 s) are what this story is about: no overrides.
GUESSES = 5
REFUSED = (paramiko.SSHException, EOFError, OSError)


def logs_in(
    daemon: Daemon,
    source: str,
    *,
    password: str | None = None,
    key: paramiko.PKey | None = None,
    user: str = "acme",
) -> bool:
    """Whether a login as `user` from the loopback address `source` gets an SFTP session."""
    sock = socket.create_connection(
        ("127.0.0.1", daemon.sftp_port), timeout=10, source_address=(source, 0)
    )
    transport = paramiko.Transport(sock)
    try:
        transport.connect(username=user, password=password, pkey=key)
        with contextlib.closing(paramiko.SFTPClient.from_transport(transport)) as sftp:
            assert sftp is not None
            return sorted(sftp.listdir("/")) == ["check", "upload"]
    except REFUSED:
        return False
    finally:
        transport.close()


def run(site: Site, *args: str, stdin: str | None = None) -> str:
    result = site.cli(*args, stdin=stdin)
    assert result.returncode == 0, result.stderr
    return str(result.stdout)


@pytest.fixture
def site(make_site: Callable[..., Site]) -> Site:
    site = make_site()
    site.add_tenant("acme", "admin@acme.example.org")
    return site


@pytest.fixture
def key(site: Site, tmp_path: Path) -> paramiko.PKey:
    """acme's SIS logs in with this key."""
    key = paramiko.Ed25519Key.from_private_key_file(_ed25519(tmp_path))
    public = f"{key.get_name()} {key.get_base64()} sis@acme\n"
    run(site, "tenant", "add-key", "acme", "-", stdin=public)
    return key


def _ed25519(folder: Path) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = folder / "sis_ed25519"
    path.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    return str(path)


def test_guesses_from_many_addresses_lock_out_neither_the_key_nor_the_password(
    site: Site, key: paramiko.PKey
) -> None:
    with site.daemon() as daemon:
        daemon.ready()
        for n in range(GUESSES):  # a botnet: one guess from each of five addresses
            assert not logs_in(daemon, f"127.0.0.{10 + n}", password=f"guess-{n}")
        assert logs_in(daemon, "127.0.0.2", key=key)  # the district's scheduler, at once
        assert logs_in(daemon, "127.0.0.3", password=PASSWORD)  # its admin, by hand
        assert daemon.stop() == 0
    assert daemon.find("sftp.login.banned") == []
    assert len(daemon.find("sftp.login.succeeded", tenant="acme")) == 2


def test_an_operator_lifts_the_ban_of_a_district_that_guessed_wrong(site: Site) -> None:
    with site.daemon() as daemon:
        daemon.ready()
        for _ in range(GUESSES):  # the SIS still has last year's password
            assert not logs_in(daemon, "127.0.0.4", password="last-years-password")
        [banned] = daemon.find("sftp.login.banned")
        assert (banned["peer"], banned["user"], banned["seconds"]) == ("127.0.0.4", "acme", 600)
        assert not logs_in(daemon, "127.0.0.4", password=PASSWORD)  # fixed, but banned

        said = run(site, "tenant", "unban", "acme")
        assert "user:acme" in said
        # The daemon reads the lift when a banned address comes back (every 2 s at most).
        wait_until(lambda: logs_in(daemon, "127.0.0.4", password=PASSWORD), 20, "the lift")
        assert daemon.stop() == 0
    [lifted] = daemon.find("sftp.login.ban_lifted")
    assert (lifted["subject"], lifted["sources"]) == ("user:acme", ["127.0.0.4"])


def test_an_unban_by_address_lifts_only_that_address(site: Site) -> None:
    site.add_tenant("beta")
    with site.daemon() as daemon:
        daemon.ready()
        for source, user in (("127.0.0.5", "acme"), ("127.0.0.6", "beta")):
            for _ in range(GUESSES):
                assert not logs_in(daemon, source, password="wrong", user=user)
        run(site, "tenant", "unban", "--address", "127.0.0.6")
        wait_until(
            lambda: logs_in(daemon, "127.0.0.6", password=PASSWORD, user="beta"), 20, "the lift"
        )
        assert not logs_in(daemon, "127.0.0.5", password=PASSWORD)
        assert daemon.stop() == 0


def test_allow_from_refuses_logins_from_elsewhere_and_strangers_cannot_slow_the_district(
    site: Site, key: paramiko.PKey
) -> None:
    shown = run(site, "tenant", "set", "acme", "--allow-from", "127.0.0.8/30, 127.0.1.1")
    assert '"127.0.0.8/30"' in shown
    assert '"127.0.1.1/32"' in shown
    with site.daemon() as daemon:
        daemon.ready()
        assert not logs_in(daemon, "127.0.0.2", password=PASSWORD)  # right password, elsewhere
        assert not logs_in(daemon, "127.0.0.2", key=key)
        for n in range(GUESSES + 1):  # guesses from outside never reach the district's pace
            assert not logs_in(daemon, f"127.0.2.{n + 1}", password=f"guess-{n}")
        assert logs_in(daemon, "127.0.0.9", password=PASSWORD)
        assert logs_in(daemon, "127.0.1.1", key=key)
        assert daemon.find("sftp.login.paced") == []

        run(site, "tenant", "set", "acme", "--allow-from", "any")
        assert logs_in(daemon, "127.0.0.2", password=PASSWORD)
        assert daemon.stop() == 0
    assert len(daemon.find("sftp.login.outside_allow_from", user="acme")) == GUESSES + 3


def test_allow_from_and_unban_refuse_what_is_not_an_address(site: Site) -> None:
    result = site.cli("tenant", "set", "acme", "--allow-from", "10.0.0.0/8,intranet")
    assert result.returncode == 2
    assert "'intranet'" in result.stderr
    result = site.cli("tenant", "unban", "--address", "10.0.0.0/8")
    assert result.returncode == 2
    assert "one IP address" in result.stderr
    result = site.cli("tenant", "unban")
    assert result.returncode == 2
