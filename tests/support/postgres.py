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


@contextlib.contextmanager
def postgres_server(*, fsync: bool = False) -> Iterator[str]:
    """Yield the SQLAlchemy URL of a fresh server; stop it and remove its files afterwards."""
    if not available():
        raise RuntimeError(f"PostgreSQL binaries not found in {PG_BIN}")
    root = Path(tempfile.mkdtemp(prefix="rosterdrop-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = _free_port()
    log = root / "server.log"
    subprocess.run(
        _as_server_user(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(data),
                "-U",
                "rosterdrop",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=200"
    if not fsync:
        # A test server: durability across power loss is not what we are testing.
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    subprocess.run(
        _as_server_user(
            [str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        yield f"postgresql+psycopg://rosterdrop@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_server_user(
                [str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
            ),
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(50):
            with contextlib.suppress(OSError):
                shutil.rmtree(root)
                break
            time.sleep(0.1)


def create_database(admin_url: str, name: str) -> str:
    """Create database `name` on the server behind `admin_url`; return its URL."""
    import psycopg

    conninfo = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}"
