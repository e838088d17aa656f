"""The service's background tasks: one that runs out of file descriptors is run again."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

log = structlog.get_logger(__name__)

OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS})
RESOURCE_RETRY_SECONDS = 0.5
RESOURCE_RETRY_MAX_SECONDS = 30.0


async def resilient(name: str, work: Callable[[], Awaitable[Any]]) -> Any:
    """Run a background task, and run it again after it fails for want of file descriptors
    (EMFILE, ENFILE) or memory for sockets (ENOBUFS): a flood that the SFTP server's bounds
    did not stop must not end the whole service. Any other error still ends it."""
    delay = RESOURCE_RETRY_SECONDS
    while True:
        try:
            return await work()
        except OSError as exc:
            if exc.errno not in OUT_OF_RESOURCES:
                raise
            log.error(
                "a background task is out of resources; retrying",
                task=name,
                error=str(exc),
                retry_seconds=delay,
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, RESOURCE_RETRY_MAX_SECONDS)
