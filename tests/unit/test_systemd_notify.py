"""The notify protocol's two less common shapes: an abstract socket name (`@…`), which
systemd uses in containers and user sessions, and WATCHDOG_PID naming who must ping."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator

import pytest

from daemon.systemd import Notifier


@pytest.fixture
def abstract_socket() -> Iterator[tuple[str, socket.socket]]:
    name = f"rosterdrop-test-{secrets.token_hex(6)}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)  # in the abstract namespace: no file, no path length limit
    sock.settimeout(5)
    try:
        yield "@" + name, sock
    finally:
        sock.close()


def test_ready_reaches_an_abstract_notify_socket(
    abstract_socket: tuple[str, socket.socket],
) -> None:
    address, sock = abstract_socket
    Notifier({"NOTIFY_SOCKET": address}).ready("SFTP on port 2222")
    fields = dict(line.split("=", 1) for line in sock.recv(4096).decode().splitlines())
    assert fields["READY"] == "1"
    assert fields["STATUS"] == "SFTP on port 2222"
    assert fields["MAINPID"] == str(os.getpid())


@pytest.mark.parametrize(
    ("watchdog_pid", "pings"),
    [(None, True), (str(os.getpid()), True), (str(os.getppid()), False)],
    ids=["unset", "this-process", "another-process"],
)
def test_the_watchdog_is_pinged_only_by_the_process_it_names(
    abstract_socket: tuple[str, socket.socket], watchdog_pid: str | None, pings: bool
) -> None:
    address, _ = abstract_socket
    environ = {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "30000000"}
    if watchdog_pid is not None:
        environ["WATCHDOG_PID"] = watchdog_pid
    notifier = Notifier(environ)
    assert notifier.watchdog_enabled is pings
    if pings:
        assert notifier.watchdog_seconds == 30.0
