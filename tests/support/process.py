"""A real `rosterdrop serve` for the acceptance tests, and the peers it talks to.

`Daemon` starts the command as a process (under the MemoryDenyWriteExecute rule where the kernel
has it), reads its JSON log lines, signals and stops it. `NotifySocket` is the datagram socket
systemd would listen on; `Relay` is an SMTP server (aiosmtpd) on loopback. All blocking.
"""

from __future__ import annotations

import contextlib
import email
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from prometheus_client.parser import text_string_to_metric_families

from daemon.testpoint import STOP_AT
from tests.support import mdwe

REPO = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 30.0
# What a test's own environment must not pass on: it would steer the daemon.
_NOT_INHERITED = (
    "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "CREDENTIALS_DIRECTORY", STOP_AT,
)  # fmt: skip


@functools.cache
def mdwe_enforced() -> bool:
    return mdwe.supported()


def environment(values: Mapping[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ROSTERDROP_") and k not in _NOT_INHERITED
    }
    env["ROSTERDROP_LOG_FORMAT"] = "json"
    env.update(values)
    return env


def wait_until(check: Callable[[], Any], seconds: float, what: str, every: float = 0.05) -> Any:
    """Call `check` until it returns something truthy; fail naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(every)


def cli(
    env: Mapping[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`rosterdrop ARGS…` as an operator would run it, with the daemon's environment."""
    return subprocess.run(
        [sys.executable, "-m", "daemon", *args],
        cwd=REPO,
        env=environment(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class Daemon:
    """One run of `rosterdrop serve`; its standard error (JSON lines) goes to `log`."""

    def __init__(self, env: Mapping[str, str], log: Path, *args: str) -> None:
        self.env = environment(env)
        self.log = log
        argv = [sys.executable, "-m", "daemon", "serve", *args]
        self.argv = mdwe.command(argv) if mdwe_enforced() else argv
        self.process: subprocess.Popen[bytes] | None = None
        self.sftp_port = self.http_port = 0

    def __enter__(self) -> Daemon:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if exc_type is None:
            self.lines()  # to its last line, the log was JSON: no traceback, no stray print

    def start(self) -> Daemon:
        with self.log.open("ab") as err:
            # A process group of its own, as a shell gives a command: `interrupt()` is Ctrl-C.
            self.process = subprocess.Popen(
                self.argv, cwd=REPO, env=self.env, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
            )  # fmt: skip
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def ready(self) -> Daemon:
        line = self.wait_for("rosterdrop is ready", STARTUP_SECONDS)
        self.sftp_port, self.http_port = line["sftp_port"], line["http_port"]
        return self

    def lines(self) -> list[dict[str, Any]]:
        """Every line of the log so far; fails on one that is not a JSON object (the last
        line may be unfinished: it waits for its newline)."""
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        found = []
        for raw in text.splitlines(keepends=True):
            if not raw.endswith("\n"):
                break
            try:
                line = json.loads(raw)
            except ValueError:
                line = None
            if not isinstance(line, dict):
                raise AssertionError(f"the daemon wrote a line that is not JSON: {raw!r}\n{text}")
            found.append(line)
        return found

    def find(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        return [
            line
            for line in self.lines()
            if line.get("event") == event and all(line.get(k) == v for k, v in fields.items())
        ]

    def wait_for(self, event: str, seconds: float = 20.0, **fields: Any) -> dict[str, Any]:
        """The first log line with this event (and fields); fails early if the process ends."""

        def check() -> dict[str, Any] | None:
            found = self.find(event, **fields)
            if found:
                return found[0]
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"the daemon exited before {event!r}:\n{self.tail()}")
            return None

        result: dict[str, Any] = wait_until(check, seconds, f"log event {event!r}\n{self.tail()}")
        return result

    def tail(self, count: int = 30) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-count:])

    def send(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def interrupt(self) -> None:
        """What Ctrl-C in a terminal does: SIGINT to every process of the group."""
        os.killpg(self.pid, signal.SIGINT)

    def stop(self, signum: int = signal.SIGTERM, seconds: float = 30.0) -> int:
        """Signal the daemon and wait for it to exit; returns its exit code."""
        assert self.process is not None
        self.process.send_signal(signum)
        return self.process.wait(seconds)

    def get(self, path: str) -> tuple[int, str]:
        """GET on the daemon's HTTP port: (status, body)."""
        url = f"http://127.0.0.1:{self.http_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of /metrics, keyed by (name, sorted labels)."""
        status, body = self.get("/metrics")
        assert status == 200
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(body)
            for sample in family.samples
        }


Samples = Mapping[tuple[str, tuple[tuple[str, str], ...]], float]


def metric(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


class NotifySocket:
    """The AF_UNIX datagram socket systemd listens on: every message received, in order."""

    def __init__(self) -> None:
        # sun_path holds 108 bytes: a pytest tmp_path can be longer than that.
        self._dir = tempfile.mkdtemp(prefix="rd-notify-")
        self.path = os.path.join(self._dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages: list[tuple[float, dict[str, str]]] = []

    def close(self) -> None:
        self.sock.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
            os.rmdir(self._dir)

    def receive(self, seconds: float) -> dict[str, str] | None:
        self.sock.settimeout(seconds)
        try:
            data = self.sock.recv(4096)
        except TimeoutError:
            return None
        fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
        self.messages.append((time.monotonic(), fields))
        return fields

    def wait_for(self, key: str, seconds: float = STARTUP_SECONDS) -> dict[str, str]:
        """Receive until a message sets `key`; returns that message."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            message = self.receive(left)
            if message is not None and key in message:
                return message
        raise AssertionError(f"no {key} from the daemon in {seconds} s: {self.messages}")

    def drain(self) -> list[dict[str, str]]:
        """Every message waiting now (and those arriving within 0.2 s of each other)."""
        found = []
        while (message := self.receive(0.2)) is not None:
            found.append(message)
        return found

    def count(self, key: str) -> int:
        return sum(1 for _, m in self.messages if key in m)


class _Inbox:
    """aiosmtpd handler: keeps what it accepts."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], bytes]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.received.append((list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


class Relay:
    """An SMTP relay on loopback that may be started late (on a port chosen beforehand)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.inbox = _Inbox()
        self._controller: Controller | None = None

    def start(self) -> Relay:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def messages(self) -> list[tuple[list[str], EmailMessage]]:
        with self.inbox.lock:
            received = list(self.inbox.received)
        parsed = []
        for recipients, data in received:
            message = email.message_from_bytes(data, policy=policy.default)
            assert isinstance(message, EmailMessage)
            parsed.append((recipients, message))
        return parsed

    def with_subject(self, starting: str) -> list[EmailMessage]:
        return [m for _, m in self.messages() if str(m["Subject"]).startswith(starting)]

    def wait_for(self, starting: str, seconds: float = 20.0) -> EmailMessage:
        found = wait_until(lambda: self.with_subject(starting), seconds, f"an email {starting!r}")
        message: EmailMessage = found[0]
        return message


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextlib.contextmanager
def notify_socket() -> Iterator[NotifySocket]:
    sock = NotifySocket()
    try:
        yield sock
    finally:
        sock.close()
