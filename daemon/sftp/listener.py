"""The listening sockets and their accept loops: each new connection is admitted or closed
before anything is spent on it, then handed to asyncssh until its login ends."""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from collections import deque

import asyncssh
import structlog

from daemon.metrics import SFTP_REFUSED
from daemon.sftp.admission import Admission, Refusal, source_of

log = structlog.get_logger(__name__)

# OpenSSH's sshd listens with the same backlog (SSH_LISTEN_BACKLOG).
LISTEN_BACKLOG = 128
# accept() out of descriptors or buffers: wait this long before the next one (asyncio's own).
ACCEPT_RETRY_SECONDS = 1.0
_ACCEPT_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# One refusal line a second at most: a flood must not become a flood of log lines.
REFUSAL_LOG_SECONDS = 1.0


class Listener:
    """Accepts connections itself rather than through asyncio's server, so that a refused
    connection is closed at once, before it has a transport or costs a key exchange, and the
    descriptor check sees the socket's real number."""

    def __init__(self, admission: Admission) -> None:
        self._admission = admission
        self._sockets: list[socket.socket] = []
        self._open = False  # the sockets are being read
        self.logins: set[asyncio.Task[None]] = set()  # connections not logged in yet
        self._by_source: dict[str, deque[asyncio.Task[None]]] = {}  # oldest first
        self._options: asyncssh.SSHServerConnectionOptions | None = None
        self._last_refusal_log = 0.0

    @property
    def port(self) -> int:
        port: int = self._sockets[0].getsockname()[1]
        return port

    async def start(
        self, host: str, port: int, options: asyncssh.SSHServerConnectionOptions
    ) -> None:
        """Listen on every address `host` names; raises OSError when one cannot be bound."""
        self._options = options
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        try:
            for family, kind, proto, _, address in dict.fromkeys(infos):
                sock = socket.socket(family, kind, proto)
                self._sockets.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
                sock.listen(LISTEN_BACKLOG)
                sock.setblocking(False)
        except OSError:
            self._close_sockets()
            raise
        for sock in self._sockets:
            loop.add_reader(sock.fileno(), self._readable, sock)
        self._open = True

    def stop(self) -> None:
        """Accept no more: connections accepted so far go on (the server refuses them).

        Synchronous on purpose: an accept loop that is a task, cancelled just after accept()
        returned, would drop the socket it got without closing it."""
        if self._open:
            self._open = False
            loop = asyncio.get_running_loop()
            for sock in self._sockets:
                loop.remove_reader(sock.fileno())
        self._close_sockets()

    def _close_sockets(self) -> None:
        for sock in self._sockets:
            sock.close()

    def _readable(self, sock: socket.socket) -> None:
        # One backlog's worth at a time, then the loop serves everything else.
        for _ in range(LISTEN_BACKLOG):
            try:
                conn, peer = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _ACCEPT_OUT_OF_RESOURCES:
                    self._pause(sock, exc)
                    return
                continue  # the client gave up before we took it (ECONNABORTED, …)
            address = str(peer[0])
            refusal = self._admission.admit(address, conn.fileno())
            if refusal is not None and not (refusal.code == "startups" and self._evict(address)):
                conn.close()
                self._refused(refusal)
                continue
            conn.setblocking(False)
            self._start_login(conn, address)

    def _pause(self, sock: socket.socket, exc: OSError) -> None:
        log.error("sftp.accept_failed", error=str(exc), retry_seconds=ACCEPT_RETRY_SECONDS)
        loop = asyncio.get_running_loop()
        loop.remove_reader(sock.fileno())
        loop.call_later(ACCEPT_RETRY_SECONDS, self._resume, sock)

    def _resume(self, sock: socket.socket) -> None:
        if self._open:
            asyncio.get_running_loop().add_reader(sock.fileno(), self._readable, sock)

    def _start_login(self, conn: socket.socket, address: str) -> None:
        task = asyncio.create_task(self._login(conn), name="sftp-login")
        self.logins.add(task)
        source = source_of(address)
        self._by_source.setdefault(source, deque()).append(task)

        def ended(task: asyncio.Task[None]) -> None:
            self.logins.discard(task)
            waiting = self._by_source.get(source)
            if waiting is not None and task in waiting:  # not evicted: its count is still held
                waiting.remove(task)
                if not waiting:
                    del self._by_source[source]
                self._admission.release(address)

        task.add_done_callback(ended)

    def _evict(self, address: str) -> bool:
        """Past max_startups, the connection that goes is the oldest of the address holding
        the most, rather than the newcomer, as long as that address holds more than the
        newcomer's: a flood from a few addresses then cannot lock a district out."""
        crowded, count = self._admission.crowded()
        waiting = self._by_source.get(crowded)
        newcomer = source_of(address)
        if not waiting or count < 2 or count <= self._admission.held_by(newcomer) + 1:
            return False
        victim = waiting.popleft()
        if not waiting:
            del self._by_source[crowded]
        victim.cancel()  # its count moves to the newcomer now; its ending releases nothing
        self._admission.admit_in_place_of(address, crowded)
        SFTP_REFUSED.labels(reason="evicted").inc()
        return True

    async def _login(self, conn: socket.socket) -> None:
        """asyncssh's connection on the accepted socket, until its login ends either way."""
        # On failure the socket is closed already if asyncssh got that far, and here if not.
        try:
            await asyncssh.run_server(conn, options=self._options)
        except asyncio.CancelledError:
            conn.close()
            raise
        except Exception:  # refused, timed out or gone: ClientConnection logged it
            conn.close()

    def _refused(self, refusal: Refusal) -> None:
        SFTP_REFUSED.labels(reason=refusal.code).inc()
        now = time.monotonic()
        if now - self._last_refusal_log >= REFUSAL_LOG_SECONDS:
            self._last_refusal_log = now
            log.warning("sftp.connection.refused", reason=refusal.reason)
