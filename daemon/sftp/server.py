"""The SFTP server's life: listen, report who is busy, stop accepting, let uploads in flight
finish, disconnect."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh
import structlog

from daemon.config import SftpSettings
from daemon.errors import RosterdropError
from daemon.sftp.accounts import AccountDirectory
from daemon.sftp.connection import ClientConnection
from daemon.sftp.credentials import dummy_hash
from daemon.sftp.events import UploadEvent
from daemon.sftp.hostkeys import load_or_create_host_keys
from daemon.sftp.listener import Listener
from daemon.sftp.registry import Holdings, Registry
from daemon.sftp.throttle import LoginGuard

log = structlog.get_logger(__name__)

# What OpenSSH, paramiko, libssh2 (curl), JSch and WinSCP all negotiate. The client's order
# decides; these lists only leave out the weak (SHA-1 key exchange, CBC) and compression.
KEX_ALGS = (
    "mlkem768x25519-sha256",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "diffie-hellman-group-exchange-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group14-sha256",
)
ENCRYPTION_ALGS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
)
# hmac-sha1 stays for older SIS appliances: as a MAC it is still sound.
MAC_ALGS = (
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha2-256",
    "hmac-sha2-512",
    "hmac-sha1",
)
# Flow control: asyncssh's 2 MiB window stalls a fast sender on every round trip; a bigger
# window and packets let the client keep data in flight, as OpenSSH's sshd does.
WINDOW_BYTES = 8 << 20
MAX_PACKET_BYTES = 256 << 10
# Notice clients that vanished without closing TCP, so they stop holding session slots.
KEEPALIVE_INTERVAL = 60.0
KEEPALIVE_COUNT_MAX = 3
# After disconnecting the stragglers, how long their sessions get to discard their uploads.
CLEANUP_SECONDS = 5.0
# After the last upload in flight ended, how long its client gets for what follows it (a
# rename, a stat, its goodbye), within the stop's timeout: a loaded machine needs a few.
FOLLOW_UP_SECONDS = 5.0


class SftpError(RosterdropError):
    """The SFTP server could not start."""


class SftpServer:
    def __init__(
        self,
        settings: SftpSettings,
        host_key_dir: Path,
        accounts: AccountDirectory,
        on_event: Callable[[UploadEvent], None] | None = None,
        holdings: Holdings | None = None,
    ) -> None:
        """`holdings` names the folders besides its root where a tenant's files are kept (its
        imports in the spool and the archive): they count against its quota."""
        self._settings = settings
        self._host_key_dir = host_key_dir
        self._registry = Registry(settings, accounts, on_event, holdings)
        self._listener: Listener | None = None
        self._accepting = False

    async def start(self) -> None:
        if self._listener is not None:
            raise RuntimeError("SftpServer already started")
        try:
            keys = await asyncio.to_thread(load_or_create_host_keys, self._host_key_dir)
        except (OSError, asyncssh.KeyImportError) as exc:
            raise SftpError(f"host keys in {self._host_key_dir} are unusable: {exc}") from exc
        await asyncio.to_thread(dummy_hash)  # the first unknown-user login must not be faster
        host, port = self._settings.host, self._settings.port
        options = asyncssh.SSHServerConnectionOptions(
            server_factory=functools.partial(ClientConnection, self._registry),
            server_host_keys=keys,
            **self._options(),
        )
        listener = Listener(self._registry.admission)
        try:
            await listener.start(host, port, options)
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            raise SftpError(f"cannot listen on {host}:{port}: {reason}") from exc
        self._listener = listener
        self._accepting = True
        log.info("sftp.listening", host=self._settings.host, port=self.port)

    @property
    def port(self) -> int:
        if self._listener is None:
            raise RuntimeError("SftpServer not started")
        return self._listener.port

    @property
    def throttle(self) -> LoginGuard:
        """The failed-login counts (a cluster's nodes share them: daemon/cluster/logins.py)."""
        return self._registry.throttle

    def active_uploads(self, tenant: str) -> int:
        return self._registry.active_uploads(tenant)

    def session_count(self) -> int:
        return self._registry.session_count()

    def logins_pending(self) -> int:
        """Connections accepted that have not logged in yet (what max_startups bounds)."""
        return self._registry.admission.pending

    async def stop_accepting(self) -> None:
        """Accept no more connections; those accepted already are refused as they arrive."""
        self._registry.stopping = True
        listener = self._listener
        if listener is not None and self._accepting:
            self._accepting = False
            listener.stop()
            log.info("sftp.stopped_accepting")

    async def close(self, timeout: float) -> None:  # noqa: ASYNC109 - the agreed interface
        """Hang up at once on every connection without an upload open; give uploads in flight
        `timeout` seconds to finish (new ones are refused), and their clients a moment after;
        then hang up on the rest, whose partial uploads are discarded."""
        registry = self._registry
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        await self.stop_accepting()
        idle = [client for client in registry.connections if not client.busy()]
        for client in idle:
            client.hang_up("server shutting down")
        registry.upload_ended()  # nothing in flight: the wait below ends at once
        if registry.connections:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(registry.no_uploads.wait(), timeout)
            # A client whose upload just ended may still stat or rename it (WinSCP's .filepart):
            # a moment for that, then it is hung up whether it is done or not.
            follow_up = min(FOLLOW_UP_SECONDS, max(0.0, deadline - loop.time()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(registry.no_connections.wait(), follow_up)
        if registry.connections:
            log.warning("sftp.closing_sessions", sessions=len(registry.connections))
            for client in list(registry.connections):
                client.hang_up("server shutting down")
        # Disconnected sessions discard their partial uploads in their handler tasks.
        if registry.handler_tasks:
            await asyncio.wait(set(registry.handler_tasks), timeout=CLEANUP_SECONDS)
        # Until every connection accepted is gone, logins under way included: one left open
        # would outlive the loop (ResourceWarning: unclosed transport).
        logins = self._listener.logins if self._listener is not None else set()
        if logins:
            await asyncio.wait(set(logins), timeout=CLEANUP_SECONDS)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(registry.no_connections.wait(), CLEANUP_SECONDS)
        log.info("sftp.closed")

    def _options(self) -> dict[str, Any]:
        return {
            "server_version": "rosterdrop",
            "kex_algs": KEX_ALGS,
            "encryption_algs": ENCRYPTION_ALGS,
            "mac_algs": MAC_ALGS,
            "compression_algs": ("none",),
            "login_timeout": self._settings.login_timeout,
            "keepalive_interval": KEEPALIVE_INTERVAL,
            "keepalive_count_max": KEEPALIVE_COUNT_MAX,
            "password_auth": True,
            "kbdint_auth": True,  # answered with the password check (WinSCP, JSch use it)
            "public_key_auth": True,
            "host_based_auth": False,
            "gss_host": None,
            "gss_kex": False,
            "gss_auth": False,
            "rdns_lookup": False,
            "allow_pty": False,
            "line_editor": False,  # a PTY feature; without it every reply skips a layer
            "x11_forwarding": False,
            "agent_forwarding": False,
            "allow_scp": False,
            "encoding": None,
            "window": WINDOW_BYTES,
            "max_pktsize": MAX_PACKET_BYTES,
        }
