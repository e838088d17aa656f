"""Logins: the same answer for every kind of failure, throttling, the session cap, timeouts, and
everything that is not SFTP refused."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import statistics
import time
from pathlib import Path

import paramiko
import pytest
from sftp_fixtures import (
    PASSWORD,
    TENANT,
    ClientKey,
    ServerFactory,
    SftpEnv,
    connect,
    login,
    metric,
    running_server,
)

from daemon.sftp import hash_password

LOGIN_REFUSED = (paramiko.SSHException, EOFError, OSError)


def _started(port: int) -> paramiko.Transport:
    transport = paramiko.Transport(socket.create_connection(("127.0.0.1", port), timeout=10))
    transport.start_client(timeout=10)
    return transport


SAMPLES = 5  # logins timed per kind of failure


def failed_login(port: int, username: str, password: str) -> tuple[str, list[str], float]:
    """What a client learns from a failed login: the error, the methods offered, the time."""
    with (
        contextlib.closing(_started(port)) as transport,
        pytest.raises(paramiko.BadAuthenticationType) as none_auth,
    ):
        transport.auth_none(username)
    with contextlib.closing(_started(port)) as transport:
        started = time.perf_counter()
        with pytest.raises(paramiko.AuthenticationException) as caught:
            transport.auth_password(username, password)
        seconds = time.perf_counter() - started
    return str(caught.value), none_auth.value.allowed_types, seconds


async def test_wrong_password_unknown_user_and_disabled_look_alike(
    tmp_path: Path, sftp_host_keys: Path
) -> None:
    failures = metric("rosterdrop_sftp_logins_total", result="failure")
    # The production hash cost, so that the timing comparison is the real one.
    async with running_server(tmp_path, sftp_host_keys, hash_password(PASSWORD)) as env:
        env.add_tenant("closed-district")
        env.disable("closed-district")
        # Interleaved, and enough of each for a median: on two busy cores one login in a
        # few is slowed by something else.
        cases = [(TENANT, "wrong"), ("nobody", PASSWORD), ("closed-district", PASSWORD)] * SAMPLES
        answers = [await asyncio.to_thread(failed_login, env.port, *case) for case in cases]

    errors = {(message, tuple(methods)) for message, methods, _ in answers}
    assert len(errors) == 1
    assert set(next(iter(errors))[1]) >= {"password", "publickey"}
    seconds: dict[str, list[float]] = {}
    for (user, _), (_, _, took) in zip(cases, answers, strict=True):
        seconds.setdefault(user, []).append(took)
    wrong = statistics.median(seconds[TENANT])
    assert wrong > 0.02  # the argon2 verification did run
    for user in ("nobody", "closed-district"):
        # Without the dummy verification an unknown user is answered ~100x faster.
        assert 0.4 * wrong < statistics.median(seconds[user]) < 2.5 * wrong, seconds
    assert metric("rosterdrop_sftp_logins_total", result="failure") >= failures + 3 * SAMPLES


async def test_failures_ban_the_address_then_the_ban_expires(start_sftp: ServerFactory) -> None:
    throttled_before = metric("rosterdrop_sftp_logins_total", result="throttled")
    async with start_sftp(max_auth_failures=3, ban_seconds=1.0) as env:
        for _ in range(3):
            with pytest.raises(paramiko.AuthenticationException):
                await login(env.port, password="guess")
        with pytest.raises(LOGIN_REFUSED):  # even the right password: the address is banned
            await login(env.port)
        # Only the address is banned: another address gets in, as another user.
        env.add_tenant("district2")
        await login(env.port, username="district2", source="127.0.0.2")
        await asyncio.sleep(1.1)
        await login(env.port)
    assert metric("rosterdrop_sftp_logins_total", result="throttled") > throttled_before


async def test_failures_from_many_addresses_pace_the_username_never_its_key(
    start_sftp: ServerFactory, sftp_client_key: ClientKey
) -> None:
    key = paramiko.Ed25519Key.from_private_key_file(str(sftp_client_key.private))
    # No waiting in turn here: a paced check refused unchecked shows the pace at once.
    async with start_sftp(
        max_auth_failures=3, user_delay_seconds=30, user_max_wait_seconds=0
    ) as env:
        env.add_tenant(TENANT, authorized_keys=sftp_client_key.public + "\n")
        env.add_tenant("district2")
        for n in (2, 3, 4):  # one failure per address: no address reaches the limit
            with pytest.raises(paramiko.AuthenticationException):
                await login(env.port, password="x", source=f"127.0.0.{n}")
        await login(env.port, source="127.0.0.5")  # the next check runs at once...
        with pytest.raises(LOGIN_REFUSED):  # ... and the one after it only 30 s later
            await login(env.port, source="127.0.0.6")
        await login(env.port, password=None, key=key, source="127.0.0.6")  # keys: never paced
        await login(env.port, username="district2", source="127.0.0.6")
        assert not env.server._registry.throttle.source_banned("127.0.0.6")


async def test_an_operators_lift_reaches_the_running_server(start_sftp: ServerFactory) -> None:
    async with start_sftp(max_auth_failures=2, ban_seconds=600) as env:
        for _ in range(2):
            with pytest.raises(paramiko.AuthenticationException):
                await login(env.port, password="guess", source="127.0.0.7")
        with pytest.raises(LOGIN_REFUSED):
            await login(env.port, source="127.0.0.7")
        env.directory.lifts.append("address:127.0.0.7")
        # Read when the banned address comes back (at most every LIFT_POLL_SECONDS).
        async with asyncio.timeout(10):
            while True:
                try:
                    await login(env.port, source="127.0.0.7")
                    break
                except LOGIN_REFUSED:
                    await asyncio.sleep(0.2)


async def test_key_only_failures_count_once_per_connection(start_sftp: ServerFactory) -> None:
    stranger = paramiko.ECDSAKey.generate()
    failures = metric("rosterdrop_sftp_logins_total", result="failure")
    async with start_sftp(max_auth_failures=2, ban_seconds=30.0) as env:
        for _ in range(2):
            with pytest.raises(paramiko.AuthenticationException):
                await login(env.port, password=None, key=stranger)
        # Counted when each connection ends, whatever number of keys it offered.
        await env.wait_for(
            lambda: metric("rosterdrop_sftp_logins_total", result="failure") == failures + 2
        )
        with pytest.raises(LOGIN_REFUSED):
            await login(env.port)


async def test_directory_outage_refuses_logins_but_bans_nobody(
    start_sftp: ServerFactory,
) -> None:
    async with start_sftp(max_auth_failures=2) as env:
        env.directory.down = True
        for _ in range(3):
            with pytest.raises(paramiko.AuthenticationException):
                await login(env.port)
        env.directory.down = False
        await login(env.port)


async def test_session_cap_per_tenant(start_sftp: ServerFactory) -> None:
    async with start_sftp(max_sessions_per_tenant=2) as env:
        env.add_tenant("district2")
        first = await asyncio.to_thread(connect, env.port)
        second = await asyncio.to_thread(connect, env.port)
        assert env.server.session_count() == 2
        with pytest.raises(LOGIN_REFUSED):
            await asyncio.to_thread(open_sftp, env.port)
        other_tenant = await asyncio.to_thread(connect, env.port, username="district2")
        first.close()
        await env.wait_for(lambda: env.server.session_count() == 2)
        again = await asyncio.to_thread(connect, env.port)
        assert await asyncio.to_thread(paramiko.SFTPClient.from_transport, again) is not None
        for transport in (second, other_tenant, again):
            transport.close()


def open_sftp(port: int) -> None:
    transport = connect(port)
    try:
        paramiko.SFTPClient.from_transport(transport)
    finally:
        transport.close()


def _refusals(transport: paramiko.Transport) -> list[str]:
    attempts = {
        "exec": lambda: transport.open_session().exec_command("ls /"),
        "scp": lambda: transport.open_session().exec_command("scp -t /upload/x"),
        "shell": lambda: transport.open_session().invoke_shell(),
        "pty": lambda: transport.open_session().get_pty(),
        "subsystem": lambda: transport.open_session().invoke_subsystem("netconf"),
        "x11": lambda: transport.open_session().request_x11(),
        "direct-tcpip": lambda: transport.open_channel(
            "direct-tcpip", ("127.0.0.1", 22), ("127.0.0.1", 5555)
        ),
        "tcpip-forward": lambda: transport.request_port_forward("127.0.0.1", 0),
    }
    refused = []
    for name, attempt in attempts.items():
        try:
            attempt()
        except paramiko.SSHException:
            refused.append(name)
    return refused


async def test_only_the_sftp_subsystem_is_served(sftp_env: SftpEnv) -> None:
    transport = await asyncio.to_thread(connect, sftp_env.port)
    try:
        refused = await asyncio.to_thread(_refusals, transport)
        sftp = await asyncio.to_thread(paramiko.SFTPClient.from_transport, transport)
        assert sftp is not None
        assert sorted(await asyncio.to_thread(sftp.listdir, "/")) == ["check", "upload"]
    finally:
        transport.close()
    assert refused == [
        "exec",
        "scp",
        "shell",
        "pty",
        "subsystem",
        "x11",
        "direct-tcpip",
        "tcpip-forward",
    ]


async def test_login_timeout_closes_silent_connections(start_sftp: ServerFactory) -> None:
    async with start_sftp(login_timeout=0.3) as env:
        reader, writer = await asyncio.open_connection("127.0.0.1", env.port)
        started = time.monotonic()
        banner = await reader.readline()
        async with asyncio.timeout(3):
            await reader.read()  # returns at EOF: the server hung up on us
        writer.close()
    assert banner.startswith(b"SSH-2.0-rosterdrop")
    assert time.monotonic() - started >= 0.25


async def test_idle_sessions_are_disconnected(start_sftp: ServerFactory) -> None:
    async with start_sftp(idle_timeout=0.4) as env:
        transport = await asyncio.to_thread(connect, env.port)
        sftp = await asyncio.to_thread(paramiko.SFTPClient.from_transport, transport)
        assert sftp is not None
        for _ in range(4):  # activity keeps it open well past the timeout
            await asyncio.to_thread(sftp.listdir)
            await asyncio.sleep(0.2)
        assert transport.is_active()
        await env.wait_for(lambda: not transport.is_active(), seconds=3)
        assert env.server.session_count() == 0
        transport.close()


async def test_password_login_works_with_keyboard_interactive(sftp_env: SftpEnv) -> None:
    def kbdint() -> list[str]:
        sock = socket.create_connection(("127.0.0.1", sftp_env.port), timeout=10)
        transport = paramiko.Transport(sock)
        try:
            transport.start_client(timeout=10)
            transport.auth_interactive(
                TENANT, lambda title, instr, prompts: [PASSWORD] * len(prompts)
            )
            sftp = paramiko.SFTPClient.from_transport(transport)
            assert sftp is not None
            return sftp.listdir("/")
        finally:
            transport.close()

    assert sorted(await asyncio.to_thread(kbdint)) == ["check", "upload"]
