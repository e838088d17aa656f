"""Upload throughput of `rosterdrop serve` against OpenSSH's sshd (internal-sftp), and its memory.

    .venv/bin/python bench/sftp_throughput.py [--rounds 5]

Both servers run side by side in one run, on loopback. rosterdrop is the real daemon,
`python -m daemon serve` (SFTP server, upload watcher and spool, the import fork server, mailer,
HTTP), started the way bench/serve_latency.py starts it: embedded defaults (SQLite, .eml emails)
in a temporary data directory, free ports, tenants added to its database beforehand. sshd runs
as the current user on a free high port with its own configuration, host key and
authorized_keys in a temporary directory, `Subsystem sftp internal-sftp`. When /usr/sbin/sshd is
missing the script installs openssh-server with apt-get if it runs as root, and otherwise says
what to install.

Throughput: the same client, OpenSSH's `sftp` in batch mode, logs in with the same ed25519 key
(the one login both servers can check here: the tenant `bench` has a password and this key) and
puts the same 100 MB random file into each server's upload folder. Each round uploads once to
each server, the first server alternating, with no dirty pages left by the previous upload; a
round's time is the whole `sftp` command (connection, login, transfer, close). Printed: the
load average when the uploads begin, every round's MB/s, the best and the median of each server
and their ratios. Target (issue 3): rosterdrop at least 0.8x sshd. Both servers are bound by
CPU (encryption, and for rosterdrop its event loop): run it on an otherwise idle machine, and
add rounds (`--rounds`) when the rounds disagree.

Memory, measured first, before any upload (buffers freed after the uploads would hide what the
sessions cost): the daemon's whole process tree, found through /proc/PID/task/*/children: the
`serve` process, multiprocessing's fork server (which preloads the import pipeline) and its
resource tracker, plus import processes if one ran (none does here). For each process, from
/proc/PID/smaps_rollup, RSS and USS (Private_Clean + Private_Dirty: the pages no other process
maps). The tree's summed RSS counts pages shared between processes (the interpreter and
libraries, the fork server's pages its forks inherit) once per process: an upper bound. The
summed USS leaves them all out: what ending the daemon frees, a lower bound (it shrinks when
other Python processes on the machine map the same files).
Measured once the tree's memory stops growing after startup, then with 50 SFTP sessions open
and idle: 50 tenants, one session each (the cap per tenant is 8), logging in with their
password through paramiko, as SIS schedulers do.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.serve_latency import (  # noqa: E402
    IDLE_SESSIONS,
    add_tenants,
    connect,
    daemon,
    environment,
)
from daemon.config import load_settings  # noqa: E402
from daemon.store import tenants  # noqa: E402

SSHD = Path("/usr/sbin/sshd")
FILE_BYTES = 100 * 1000 * 1000
ROUNDS = 5
TENANT = "bench"
SETTLE_SECONDS = 30.0  # the default: nothing here is meant to be imported
SSH_OPTIONS = [
    "-F", "/dev/null",
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "IdentitiesOnly=yes",
    "-o", "LogLevel=ERROR",
]  # fmt: skip


@dataclass(frozen=True)
class Target:
    name: str
    port: int
    user: str
    remote: str  # where `put` writes, as the server shows it
    landed: Path  # the same file on disk


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


def prepare_daemon(data: Path, public_key: str) -> dict[str, str]:
    """The daemon's environment, with the tenant `bench` (password and key) and 50 idle ones
    (password) in its database."""
    env = environment(data, SETTLE_SECONDS)
    idle = [f"idle{i:02d}" for i in range(IDLE_SESSIONS)]
    db = add_tenants(env, [TENANT, *idle])
    try:
        with db.write() as conn:
            tenants.update(conn, TENANT, authorized_keys=public_key + "\n")
    finally:
        db.close()
    return env


def wait_listening(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


# -- throughput -----------------------------------------------------------------------------


def upload_seconds(target: Target, key: Path, local: Path) -> float:
    command = ["sftp", "-q", "-b", "-", "-P", str(target.port), *SSH_OPTIONS, "-i", str(key)]
    started = time.perf_counter()
    subprocess.run(
        [*command, f"{target.user}@127.0.0.1"],
        input=f"put {local} {target.remote}\n".encode(),
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - started


def measure_throughput(sshd: Target, ours: Target, key: Path, local: Path, rounds: int) -> None:
    """Each round uploads to both, the first one alternating, each upload starting with no
    dirty pages so that neither pays for the other's writeback."""
    targets = [sshd, ours]
    rates: dict[str, list[float]] = {t.name: [] for t in targets}
    load = os.getloadavg()[0]
    print(f"file: {FILE_BYTES / 1e6:.0f} MB, OpenSSH sftp client (key login), {rounds} rounds;"
          f" load average {load:.2f} on {os.cpu_count()} CPUs")  # fmt: skip
    for round_ in range(rounds):
        order = targets if round_ % 2 == 0 else targets[::-1]
        for target in order:
            target.landed.unlink(missing_ok=True)
            os.sync()
            took = upload_seconds(target, key, local)
            if target.landed.stat().st_size != FILE_BYTES:
                raise RuntimeError(f"{target.landed} is incomplete")
            rates[target.name].append(FILE_BYTES / took / 1e6)
        shown = ", ".join(f"{t.name} {rates[t.name][-1]:6.1f}" for t in targets)
        print(f"  round {round_ + 1}: {shown} MB/s")
    for target in targets:
        rate = rates[target.name]
        print(
            f"{target.name + ':':28} best {max(rate):6.1f} MB/s,"
            f" median {statistics.median(rate):6.1f} MB/s"
        )
    mine, theirs = rates[ours.name], rates[sshd.name]
    print(
        f"ratio rosterdrop/sshd: best {max(mine) / max(theirs):.2f},"
        f" median {statistics.median(mine) / statistics.median(theirs):.2f} (target >= 0.80)"
    )


# -- memory ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    role: str
    rss_kib: int
    uss_kib: int


def tree(pid: int) -> list[tuple[int, int]]:
    """(pid, parent pid) of `pid` and all its descendants, `pid` first."""
    found, queue = [], [(pid, 0)]
    while queue:
        current, parent = queue.pop(0)
        found.append((current, parent))
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                queue += [(int(c), current) for c in (task / "children").read_text().split()]
    return found


def role(pid: int, parent: int, roles: dict[int, str]) -> str:
    if not parent:
        return "serve"
    if roles.get(parent) == "fork server":
        return "import"  # forked, not exec'd: its command line is the fork server's
    command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    if b"forkserver" in command:
        return "fork server"
    if b"resource_tracker" in command:
        return "resource tracker"
    return "other"


def tree_usage(pid: int) -> list[Usage]:
    usages, roles = [], {}
    for current, parent in tree(pid):
        roles[current] = role(current, parent, roles)
        fields: dict[str, int] = {}
        with contextlib.suppress(OSError):  # it ended meanwhile
            for line in Path(f"/proc/{current}/smaps_rollup").read_text().splitlines():
                name, _, rest = line.partition(":")
                if name in ("Rss", "Private_Clean", "Private_Dirty"):
                    fields[name] = int(rest.split()[0])
            private = fields["Private_Clean"] + fields["Private_Dirty"]
            usages.append(Usage(roles[current], fields["Rss"], private))
    return usages


def settled_usage(pid: int) -> list[Usage]:
    """The tree's usage once its RSS stops growing (the fork server imports the pipeline after
    the daemon says it is ready); at most 30 s."""
    deadline = time.monotonic() + 30
    last = tree_usage(pid)
    while time.monotonic() < deadline:
        time.sleep(1)
        usage = tree_usage(pid)
        if abs(sum(u.rss_kib for u in usage) - sum(u.rss_kib for u in last)) < 256:
            return usage
        last = usage
    return last


def show(label: str, usage: list[Usage]) -> None:
    parts = ", ".join(f"{u.role} {u.rss_kib / 1024:.1f}" for u in usage)
    print(
        f"  {label:22} RSS {sum(u.rss_kib for u in usage) / 1024:6.1f} MiB ({parts}),"
        f" USS {sum(u.uss_kib for u in usage) / 1024:6.1f} MiB"
    )


def measure_memory(pid: int, port: int) -> None:
    idle = settled_usage(pid)
    print(f"rosterdrop serve memory, the process tree ({len(idle)} processes):")
    show("idle:", idle)
    with ExitStack() as stack:
        for i in range(IDLE_SESSIONS):
            client = stack.enter_context(connect(port, f"idle{i:02d}"))
            stack.enter_context(client.open_sftp()).listdir("/upload")
        time.sleep(1)
        busy = tree_usage(pid)
    show(f"{IDLE_SESSIONS} idle sessions:", busy)
    rss = sum(u.rss_kib for u in busy) - sum(u.rss_kib for u in idle)
    uss = sum(u.uss_kib for u in busy) - sum(u.uss_kib for u in idle)
    print(f"  per session: RSS +{rss / IDLE_SESSIONS:.0f} KiB, USS +{uss / IDLE_SESSIONS:.0f} KiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
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
        env = prepare_daemon(work / "data", public_key)
        upload_dir = load_settings(None, env).paths.upload_dir(TENANT)
        with (
            openssh_server(work / "sshd", public_key) as sshd_port,
            daemon(env, work / "serve.log") as (process, our_port),
        ):
            measure_memory(process.pid, our_port)
            landed = work / "sshd" / "landed.bin"
            sshd = Target("OpenSSH sshd internal-sftp", sshd_port, getpass.getuser(),
                          str(landed), landed)  # fmt: skip
            ours = Target("rosterdrop serve", our_port, TENANT, "/upload/landed.bin",
                          upload_dir / "landed.bin")  # fmt: skip
            measure_throughput(sshd, ours, key, local, args.rounds)


if __name__ == "__main__":
    main()
