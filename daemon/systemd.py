"""The systemd notify protocol: READY, STATUS, WATCHDOG and STOPPING over $NOTIFY_SOCKET."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Mapping

import structlog

log = structlog.get_logger(__name__)
STATE_WAIT_SECONDS = 1.0  # READY, RELOADING, STOPPING: worth a moment's wait, not a hang


class Notifier:
    """Sends state datagrams to systemd; does nothing when not started by systemd."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):  # an abstract socket
            address = "\0" + address[1:]
        self.address = address
        self.watchdog_seconds = int(env.get("WATCHDOG_USEC", "0") or 0) / 1_000_000
        watchdog_pid = env.get("WATCHDOG_PID")
        if watchdog_pid and watchdog_pid != str(os.getpid()):
            self.watchdog_seconds = 0.0  # the watchdog is meant for another process

    def send(self, *states: str, wait: float = STATE_WAIT_SECONDS) -> None:
        """Send from the event loop, so never block it for long: while systemd is busy
        elsewhere the socket queues net.unix.max_dgram_qlen messages (the kernel's default
        is 10; systemd raises it at boot), and then a send waits."""
        if not self.address:
            return
        message = "\n".join(states).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.settimeout(wait)  # 0: non-blocking
                sock.connect(self.address)
                sock.sendall(message)
        except BlockingIOError:
            pass  # a ping or status while the queue is full: the next one says it again
        except OSError as exc:
            log.warning("systemd notification failed", error=str(exc))

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}", wait=0)  # frequent, and the next one says it again

    def reloading(self) -> None:
        """A reload began; ready() ends it. systemd 253+ wants the monotonic clock with it."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", "STATUS=reloading settings")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")

    @property
    def watchdog_enabled(self) -> bool:
        """systemd expects pings: keep_alive() must run (and never ends by itself)."""
        return bool(self.address and self.watchdog_seconds)

    async def keep_alive(self) -> None:
        """Ping the watchdog from the event loop: a stuck loop stops the pings."""
        if not self.watchdog_enabled:
            return
        while True:
            self.send("WATCHDOG=1", wait=0)
            await asyncio.sleep(self.watchdog_seconds / 3)
