"""Upload throughput of SftpServer against OpenSSH's sshd (internal-sftp), and its idle memory.

Run it as `.venv/bin/python bench/sftp_throughput.py`. Both servers get the same 100 MB file
from the same client, OpenSSH's `sftp` in batch mode with key authentication, over loopback;
the best of three runs each is kept and the ratio printed (the target is at least 0.8). Then
50 SFTP sessions are opened and left idle, and the SftpServer process's resident memory shown.

sshd runs as the current user on a free high port with its own configuration, host key and
authorized_keys in a temporary directory. When /usr/sbin/sshd is missing the script installs
openssh-server with apt-get if it runs as root, and otherwise says what to install.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import structlog

from daemon.config import SftpSettings
from daemon.sftp import Account, SftpServer

SSHD = Path("/usr/sbin/sshd")
FILE_BYTES = 100 * 1000 * 1000
RUNS = 3
IDLE_SESSIONS = 50
TENANT = "bench"
SSH_OPTIONS = [
    "-F", "/dev/null",
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "IdentitiesOnly=yes",
    "-o", "LogLevel=ERROR",
]  # fmt: skip


class OneAccount:
    def __init__(self, account: Account) -> None:
        self._account = account

    def lookup(self, username: str) -> Account | None:
        return self._account if username == self._account.name else None


async def serve(data: Path, public_key: str) -> None:
    """The server side, in its own process so that its memory and CPU are its own."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    account = Account(TENANT, data / "tenants" / TENANT, None, public_key, False)
    settings = SftpSettings(host="127.0.0.1", port=0, max_sessions_per_tenant=IDLE_SESSIONS + 8)
    server = SftpServer(settings, data / "hostkeys", OneAccount(account))
    await server.start()
    print(server.port, flush=True)
    await asyncio.to_thread(sys.stdin.read)  # until the parent closes our stdin
    await server.close(timeout=1)


def ensure_sshd() -> None:
    if SSHD.exists():
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit(f"{SSHD} is missing: install openssh-server (apt-get install openssh-server)")
    print(f"{SSHD} is missing: installing openssh-server with apt-get", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "openssh-server"], check=True, env=env)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def openssh_server(work: Path, public_key: str) -> Iterator[int]:
    keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / "host_key")]
    subprocess.run(keygen, check=True)
    (work / "authorized_keys").write_text(public_key + "\n")
    (work / "authorized_keys").chmod(0o600)
    port = free_port()
    config = work / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {work / 'host_key'}\n"
        f"AuthorizedKeysFile {work / 'authorized_keys'}\nPidFile {work / 'sshd.pid'}\n"
        "StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "Subsystem sftp internal-sftp\n"
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # its privilege separation directory
    sshd = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stderr=subprocess.DEVNULL)
    try:
        wait_listening(port)
        yield port
    finally:
        sshd.terminate()
        sshd.wait()


@contextlib.contextmanager
def rosterdrop_server(work: Path, public_key: str) -> Iterator[tuple[int, int]]:
    command = [sys.executable, __file__, "--serve", str(work), public_key]
    server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert server.stdin is not None
    assert server.stdout is not None
    try:
        port = int(server.stdout.readline())
        yield port, server.pid
    finally:
        server.stdin.close()
        server.wait(timeout=30)


def wait_listening(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def upload_seconds(port: int, user: str, key: Path, local: Path, remote: str) -> float:
    command = ["sftp", "-q", "-b", "-", "-P", str(port), *SSH_OPTIONS, "-i", str(key)]
    started = time.perf_counter()
    subprocess.run(
        [*command, f"{user}@127.0.0.1"],
        input=f"put {local} {remote}\n".encode(),
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - started


def best_rates(targets: list[tuple[int, str, str, Path]], key: Path, local: Path) -> list[float]:
    """MB/s of the best of RUNS uploads to each (port, user, remote path, landed file). Runs
    alternate between the targets and start with no dirty pages, so that neither pays for the
    other's writeback."""
    times: list[list[float]] = [[] for _ in targets]
    for _ in range(RUNS):
        for (port, user, remote, landed), took in zip(targets, times, strict=True):
            landed.unlink(missing_ok=True)
            os.sync()
            took.append(upload_seconds(port, user, key, local, remote))
            if landed.stat().st_size != FILE_BYTES:
                raise RuntimeError(f"{landed} is incomplete")
    return [FILE_BYTES / min(took) / 1e6 for took in times]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def idle_sessions_rss(port: int, pid: int, key: Path) -> tuple[int, int]:
    before = rss_kib(pid)
    options = {"username": TENANT, "client_keys": [str(key)], "known_hosts": None}
    connections = await asyncio.gather(
        *(asyncssh.connect("127.0.0.1", port, **options) for _ in range(IDLE_SESSIONS))
    )
    clients = await asyncio.gather(*(conn.start_sftp_client() for conn in connections))
    await asyncio.gather(*(client.listdir("/upload") for client in clients))
    await asyncio.sleep(1)
    during = rss_kib(pid)
    for conn in connections:
        conn.close()
    await asyncio.gather(*(conn.wait_closed() for conn in connections))
    return before, during


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--serve", nargs=2, metavar=("DATA_DIR", "PUBLIC_KEY"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(Path(args.serve[0]), args.serve[1]))
        return
    ensure_sshd()
    with tempfile.TemporaryDirectory(prefix="sftp-bench-") as temp:
        work = Path(temp)
        key = work / "client_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        public_key = (work / "client_key.pub").read_text().strip()
        local = work / "upload.bin"
        with local.open("wb") as out:
            for _ in range(FILE_BYTES // 1_000_000):
                out.write(os.urandom(1_000_000))
        (work / "sshd").mkdir()
        (work / "ours").mkdir()
        with (
            openssh_server(work / "sshd", public_key) as sshd_port,
            rosterdrop_server(work / "ours", public_key) as (our_port, pid),
        ):
            # Memory first, in a fresh process: buffers freed after the uploads would hide
            # what the sessions cost.
            rss_before, rss_idle = asyncio.run(idle_sessions_rss(our_port, pid, key))
            sshd_rate, our_rate = best_rates(
                [
                    (sshd_port, getpass.getuser(), str(work / "sshd" / "landed.bin"),
                     work / "sshd" / "landed.bin"),
                    (our_port, TENANT, "/upload/landed.bin",
                     work / "ours" / "tenants" / TENANT / "upload" / "landed.bin"),
                ],
                key,
                local,
            )  # fmt: skip
    print(f"file: {FILE_BYTES / 1e6:.0f} MB, OpenSSH sftp client, best of {RUNS}")
    print(f"OpenSSH sshd internal-sftp: {sshd_rate:7.1f} MB/s")
    print(f"rosterdrop SftpServer:      {our_rate:7.1f} MB/s")
    print(f"ratio: {our_rate / sshd_rate:.2f} (target >= 0.80)")
    print(
        f"SftpServer RSS: {rss_before / 1024:.1f} MiB idle, {rss_idle / 1024:.1f} MiB with "
        f"{IDLE_SESSIONS} idle sessions ({(rss_idle - rss_before) / IDLE_SESSIONS:.0f} KiB each)"
    )


if __name__ == "__main__":
    main()
