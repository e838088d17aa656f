"""asyncssh glue for one SFTP channel: run the SFTP protocol so that a session that dies can be
told apart from a client that closed its files."""

from __future__ import annotations

import asyncio
from typing import Protocol

from asyncssh import SSHReader, SSHServerChannel, SSHWriter
from asyncssh.packet import SSHPacket
from asyncssh.session import DataType
from asyncssh.sftp import MAX_SFTP_PACKET_LEN, MAX_SFTP_WRITE_LEN, SFTPLimits, SFTPServerHandler
from asyncssh.stream import SSHServerStreamSession

from daemon.sftp.tenantfs import MAX_OPEN_FILES_PER_SESSION, MAX_READ_BYTES, TenantSftp

SFTP_VERSION = 3  # what every mainstream client speaks; the open flags we implement are v3's

# Extensions asyncssh offers that we do not: hard links are refused anyway, and copy-data and
# ranges@asyncssh.com would bypass the file objects' own checks.
_WITHHELD_EXTENSIONS = {b"hardlink@openssh.com", b"copy-data", b"ranges@asyncssh.com"}
_ADVERTISED = [
    (name, data) for name, data in SFTPServerHandler._extensions if name not in _WITHHELD_EXTENSIONS
]
_ADVERTISED_NAMES = frozenset(name for name, _ in _ADVERTISED)


class SftpHandler(SFTPServerHandler):
    """asyncssh's SFTP protocol handler, which tells the server when the session is ending.

    asyncssh calls SFTPServer.close() both for an explicit FXP_CLOSE and, in _cleanup(), for
    every handle a dying session left open (socket dropped, channel EOF, client killed); the
    server cannot tell those calls apart. _cleanup() runs only once the request stream has
    ended, before those closes, so flagging the server there makes every later close an abort.
    """

    _extensions = _ADVERTISED
    # asyncssh serves every extension it knows, advertised or not: keep only the requests of
    # the core protocol and of the extensions above (others answer "unsupported operation").
    _packet_handlers = {  # noqa: RUF012 - asyncssh declares it so
        kind: handler
        for kind, handler in SFTPServerHandler._packet_handlers.items()
        if not isinstance(kind, bytes) or kind in _ADVERTISED_NAMES
    }

    async def _process_limits(self, packet: SSHPacket) -> SFTPLimits:
        """What we really allow, rather than asyncssh's 4 MiB reads and the process's limit."""
        packet.check_end()
        return SFTPLimits(
            MAX_SFTP_PACKET_LEN, MAX_READ_BYTES, MAX_SFTP_WRITE_LEN, MAX_OPEN_FILES_PER_SESSION
        )

    _packet_handlers[b"limits@openssh.com"] = _process_limits  # type: ignore[assignment]

    async def _cleanup(self, exc: Exception | None) -> None:
        if isinstance(self._server, TenantSftp):
            self._server.session_ending()
        await super()._cleanup(exc)


class SessionOwner(Protocol):
    """The connection a session channel belongs to."""

    def open_sftp(self, chan: SSHServerChannel[bytes]) -> TenantSftp: ...
    def touch(self) -> None: ...
    def channel_closed(self, server: TenantSftp | None) -> None: ...
    def track(self, task: asyncio.Task[None]) -> None: ...


class SftpSession(SSHServerStreamSession[bytes]):
    """A session channel that accepts only the "sftp" subsystem (no shell, exec or scp)."""

    def __init__(self, owner: SessionOwner) -> None:
        super().__init__(None, None, SFTP_VERSION, allow_scp=False)
        self._owner = owner
        self._server: TenantSftp | None = None

    def shell_requested(self) -> bool:
        return False

    def exec_requested(self, command: str) -> bool:
        return False

    def subsystem_requested(self, subsystem: str) -> bool:
        return subsystem == "sftp"

    def data_received(self, data: bytes, datatype: DataType) -> None:
        self._owner.touch()  # the connection's idle clock
        super().data_received(data, datatype)

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner.channel_closed(self._server)
        super().connection_lost(exc)

    def session_started(self) -> None:
        # What asyncssh's own session does for "sftp", with SftpHandler in place of its handler.
        chan = self._chan
        assert chan is not None
        assert self._conn is not None
        reader = SSHReader[bytes](self, chan)
        writer = SSHWriter[bytes](self, chan)
        server = self._server = self._owner.open_sftp(chan)  # type: ignore[arg-type]
        handler = SftpHandler(server, reader, writer, SFTP_VERSION)
        self._owner.track(self._conn.create_task(handler.run(), reader.logger))
