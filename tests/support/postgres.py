"""A throwaway PostgreSQL server: initdb into a temporary directory, start it on a free port.

PostgreSQL refuses to run as root, and CI runs as root, so as root the server runs as the
`postgres` user (runuser). The tests and the benchmarks both start their servers with this.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

PG_BIN = Path(os.environ.get("ROSTERDROP_PG_BIN", "/usr/lib/postgresql/15/bin"))


def available() -> bool:
    return (PG_BIN / "initdb").exists() and (PG_BIN / "pg_ctl").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


class Server:
    """A PostgreSQL server of its own in a temporary directory, which a test may stop and
    start again (on the same port, with the same data) to make a real outage."""

    def __init__(self, *, fsync: bool = False) -> None:
        if not available():
            raise RuntimeError(f"PostgreSQL binaries not found in {PG_BIN}")
        self.root = Path(tempfile.mkdtemp(prefix="rosterdrop-pg-"))
        self.data = self.root / "data"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.port = _free_port()
        self.options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200"
        )
        if not fsync:
            # A test server: durability across power loss is not what we are testing.
            self.options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        subprocess.run(
            _as_server_user(
                [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "rosterdrop", "-A", "trust",
                 "-E", "UTF8", "--no-locale", "--no-sync"]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of its `postgres` database."""
        return f"postgresql+psycopg://rosterdrop@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        log = self.root / "server.log"
        self._pg_ctl("-l", str(log), "-o", self.options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """`fast` ends every session at once, as a failover or a restart by the operator does."""
        self._pg_ctl("-m", mode, "-w", "stop")

    def _pg_ctl(self, *args: str, check: bool = True) -> None:
        subprocess.run(
            _as_server_user([str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args]),
            check=check,
            stdout=subprocess.DEVNULL,
            stderr=None if check else subprocess.DEVNULL,
        )

    def remove(self, *, wait: bool = True) -> None:
        """Stop the server and remove its files; without `wait`, they go while the caller
        goes on (a test session's server holds gigabytes of databases: 10-20 s of `rm`)."""
        self._pg_ctl("-m", "immediate", "-w", "stop", check=False)
        if not wait:
            subprocess.run(["sh", "-c", 'rm -rf -- "$0" &', str(self.root)], check=False)
            return
        for _ in range(50):
            with contextlib.suppress(OSError):
                shutil.rmtree(self.root)
                break
            time.sleep(0.1)


@contextlib.contextmanager
def postgres_server(*, fsync: bool = False, wait_for_removal: bool = True) -> Iterator[str]:
    """Yield the SQLAlchemy URL of a fresh server; stop it and remove its files afterwards."""
    server = Server(fsync=fsync)
    try:
        server.start()
        yield server.url
    finally:
        server.remove(wait=wait_for_removal)


def create_database(admin_url: str, name: str, *, template: str | None = None) -> str:
    """Create database `name` on the server behind `admin_url`, empty or a copy of
    `template` (which no session may be connected to); return its URL."""
    import psycopg

    conninfo = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return admin_url.rsplit("/", 1)[0] + f"/{name}"
