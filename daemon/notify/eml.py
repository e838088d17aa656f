"""The embedded transport: each message becomes an .eml file in the outbox folder."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from pathlib import Path

import structlog

from daemon.notify.transport import RelayUnavailable
from daemon.store.outbox import OutboxMessage

log = structlog.get_logger(__name__)


class EmlTransport:
    """Used when no SMTP host is configured, so a fresh install shows every email it would send."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def describe(self) -> str:
        return f".eml files in {self.directory}"

    async def deliver(self, message: OutboxMessage) -> str | None:
        try:
            path = await asyncio.to_thread(self._write, message)
        except OSError as exc:
            raise RelayUnavailable(f"cannot write to {self.directory}: {exc}") from exc
        log.info(
            "notify.eml_written",
            message_id=message.id,
            kind=message.kind,
            path=str(path),
            recipients=list(message.recipients),
            subject=message.subject,
            **message.about,
        )
        return None

    def path_for(self, message: OutboxMessage) -> Path:
        return self.directory / f"{message.id}-{message.kind}.eml"

    def _write(self, message: OutboxMessage) -> Path:
        """Temp file, fsync, rename: a reader never sees half a message, a crash leaves none."""
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.path_for(message)
        fd, temp = tempfile.mkstemp(dir=self.directory, prefix=f".{message.id}-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(message.message)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        return final
