"""`rosterdrop serve` on an empty database migrates it before anyone can connect: READY=1
comes with the schema at its head, and the SFTP port answers only once the schema is there."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from daemon.store.database import HEAD_REVISION
from tests.support.process import STARTUP_SECONDS, free_port, notify_socket
from tests.support.site import Site


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_serve_on_an_empty_database_is_ready_only_once_it_is_migrated(
    tmp_path: Path, host_keys: Path
) -> None:
    port = free_port()  # known beforehand: the test knocks on it while the daemon starts
    site = Site.create(tmp_path, host_keys, migrate=False, ROSTERDROP_SFTP_PORT=str(port))
    try:
        assert site.schema_version() is None
        with notify_socket() as notify, site.daemon(NOTIFY_SOCKET=notify.path) as daemon:
            deadline = time.monotonic() + STARTUP_SECONDS
            ready = None
            while ready is None:
                if _answers(port):
                    # Listening already: the schema must be in place before the first login.
                    assert site.schema_version() == HEAD_REVISION
                message = notify.receive(0.02)
                if message is not None and "READY" in message:
                    ready = message
                assert daemon.process is not None
                assert daemon.process.poll() is None, daemon.tail()
                assert time.monotonic() < deadline, "no READY=1"
            assert site.schema_version() == HEAD_REVISION
            assert _answers(port)
            assert f"SFTP on port {port}" in ready["STATUS"]
            assert daemon.stop() == 0
    finally:
        site.close()
