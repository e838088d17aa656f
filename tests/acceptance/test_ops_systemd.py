"""Running under systemd: the unit files verify, and `rosterdrop serve` speaks the notify
protocol (READY only once SFTP listens, WATCHDOG pings, RELOADING at SIGHUP, STOPPING at
SIGTERM, exit 0)."""

from __future__ import annotations

import itertools
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from daemon.config import SMTP_PASSWORD_CREDENTIAL
from tests.support import mdwe, real_tools
from tests.support.drop import District
from tests.support.process import (
    REPO,
    Daemon,
    NotifySocket,
    mdwe_enforced,
    notify_socket,
    wait_until,
)
from tests.support.site import Site, upload

SYSTEMD = REPO / "systemd"
UNIT = SYSTEMD / "rosterdrop.service"
INSTALLED = "/opt/rosterdrop/bin/rosterdrop"
WATCHDOG_USEC = 300_000  # pings every 0.1 s


def _directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def _tool(name: str) -> str:
    """A systemd tool; under `make test` (where .ci/tools installs systemd) its absence fails."""
    found = shutil.which(name)
    if found is None:
        real_tools.missing(f"{name} (apt-get install systemd)")
    return found


@pytest.mark.systemd
def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = _tool("systemd-analyze")
    # verify wants ExecStart's program to exist: point a copy at this checkout's command.
    command = Path(sys.executable).with_name("rosterdrop")
    assert command.exists()
    copy = tmp_path / "rosterdrop.service"
    copy.write_text(UNIT.read_text().replace(INSTALLED, str(command)))
    result = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


def test_the_unit_agrees_with_the_daemon_and_the_snippets() -> None:
    unit = _directives(UNIT.read_text())
    assert unit["Type"] == ["notify"]
    assert unit["ExecStart"] == [f"{INSTALLED} serve"]
    assert unit["KillMode"] == ["mixed"], "SIGTERM to the daemon only: it stops its imports"
    state = "/var/lib/" + unit["StateDirectory"][0]
    assert unit["ReadWritePaths"] == [state]
    assert unit["WorkingDirectory"] == [state]
    name, _, source = unit["LoadCredential"][0].partition(":")
    assert name == SMTP_PASSWORD_CREDENTIAL
    user = unit["User"][0]
    sysusers = (SYSTEMD / "rosterdrop.sysusers.conf").read_text()
    assert re.search(rf"^u\s+{user}\s", sysusers, re.M)
    tmpfiles = (SYSTEMD / "rosterdrop.tmpfiles.conf").read_text()
    assert re.search(rf"^f\s+{re.escape(source)}\s+0600\s+root", tmpfiles, re.M)
    assert re.search(rf"^d\s+{state}\s+0750\s+{user}\s+{user}", tmpfiles, re.M)
    # The stop timeout leaves room for the daemon's own (default 30 s).
    assert int(unit["TimeoutStopSec"][0].rstrip("s")) > 30


@pytest.mark.systemd
def test_sysusers_and_tmpfiles_snippets_apply_to_a_scratch_root(tmp_path: Path) -> None:
    sysusers, tmpfiles = _tool("systemd-sysusers"), _tool("systemd-tmpfiles")
    (tmp_path / "etc").mkdir()
    subprocess.run(
        [sysusers, f"--root={tmp_path}", str(SYSTEMD / "rosterdrop.sysusers.conf")], check=True
    )
    passwd = (tmp_path / "etc" / "passwd").read_text()
    entry = r"^rosterdrop:x:\d+:\d+:.*:/var/lib/rosterdrop:/usr/sbin/nologin$"
    assert re.search(entry, passwd, re.M)
    result = subprocess.run(
        [tmpfiles, f"--root={tmp_path}", "--create", str(SYSTEMD / "rosterdrop.tmpfiles.conf")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    credential = tmp_path / "etc" / "rosterdrop" / "smtp_password"
    assert credential.is_file()
    assert credential.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "var" / "lib" / "rosterdrop").is_dir()


def test_memory_deny_write_execute_is_enforced_on_the_test_daemons() -> None:
    """Every Daemon in these tests runs under the kernel's form of MemoryDenyWriteExecute, so
    each passing test shows Python and its native libraries run with it."""
    if not mdwe_enforced():
        pytest.skip("this kernel has no PR_SET_MDWE")
    probe = "import mmap; mmap.mmap(-1, 4096, prot=mmap.PROT_READ|mmap.PROT_WRITE|mmap.PROT_EXEC)"
    result = subprocess.run(
        mdwe.command([sys.executable, "-c", probe]), capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "PermissionError" in result.stderr


def _banner(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        return conn.recv(64)


def _queue_full(path: str) -> bool:
    """Whether the notify socket's queue is full: a datagram sent to it now would wait."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
        probe.setblocking(False)
        try:
            probe.sendto(b"PROBE=1", path)
        except BlockingIOError:
            return True
    return False


def _loop_latency_while_the_queue_is_full(port: int, notify_path: str) -> list[float]:
    """Nobody reads the notify socket: once its queue is full, how long the daemon takes to
    send its SSH banner (its event loop's latency), again and again over ten pings."""
    wait_until(lambda: _queue_full(notify_path), 10.0, "the notify queue to fill")
    latencies = []
    until = time.monotonic() + 10 * WATCHDOG_USEC / 1_000_000 / 3
    while time.monotonic() < until:
        started = time.monotonic()
        assert _banner(port).startswith(b"SSH-2.0-")
        latencies.append(time.monotonic() - started)
    assert _queue_full(notify_path), "the queue stayed full meanwhile"
    return latencies


def _reload(daemon: Daemon, notify: NotifySocket) -> None:
    daemon.send(signal.SIGHUP)
    reloading = notify.wait_for("RELOADING", 10)
    assert int(reloading["MONOTONIC_USEC"]) > 0
    assert "STATUS" in notify.wait_for("READY", 10)


def test_a_life_under_systemd_ready_watchdog_reload_stopping(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(ROSTERDROP_HTTP_ENABLED="false")
    config = site.root / "rosterdrop.toml"
    config.write_text('[log]\nlevel = "warning"\n', encoding="utf-8")
    env = {"ROSTERDROP_CONFIG": str(config), "WATCHDOG_USEC": str(WATCHDOG_USEC)}
    with notify_socket() as notify, site.daemon(NOTIFY_SOCKET=notify.path, **env) as daemon:
        # READY=1 comes once the SFTP port answers and the schema is in place.
        ready = notify.wait_for("READY")
        port = int(re.search(r"SFTP on port (\d+)", ready["STATUS"])[1])  # type: ignore[index]
        assert _banner(port).startswith(b"SSH-2.0-")
        assert "HTTP" not in ready["STATUS"], "HTTP is off"
        assert ready["MAINPID"] == str(daemon.pid)
        with site.db() as db, db.read() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        assert notify.count("READY") == 1

        # The watchdog is pinged from the event loop, about three times per period.
        wait_until(
            lambda: notify.receive(1.0) is not None and notify.count("WATCHDOG") >= 4,
            5.0,
            "four watchdog pings",
            every=0,
        )
        pings = [t for t, m in notify.messages if m.get("WATCHDOG") == "1"]
        assert max(b - a for a, b in itertools.pairwise(pings)) < 0.3

        # SIGHUP re-reads the log level, between RELOADING=1 and READY=1.
        assert daemon.lines() == [], "nothing at info level while the level is warning"
        config.write_text('[log]\nlevel = "info"\n', encoding="utf-8")
        _reload(daemon, notify)
        assert daemon.wait_for("settings reloaded")["log_level"] == "info"
        # Import processes started since log at the new level too. Meanwhile nobody reads the
        # notify socket (a busy PID 1): its queue fills, and the daemon drops watchdog pings
        # rather than block its event loop.
        site.add_tenant("acme")
        stalls = _loop_latency_while_the_queue_is_full(port, notify.path)
        assert max(stalls) < 0.5, f"the event loop stalled while the queue was full: {stalls}"
        upload(port, "acme", District("acme").files())
        assert daemon.wait_for("import validated")["tenant"] == "acme"
        # A mistake in the file is logged, naming the key; the running settings stay.
        config.write_text('[log]\nlevel = "loud"\n', encoding="utf-8")
        _reload(daemon, notify)
        failed = daemon.wait_for("reload failed; keeping the running settings")
        assert "log.level" in failed["error"]

        daemon.send(signal.SIGTERM)
        assert notify.wait_for("STOPPING", 10)["STOPPING"] == "1"
        assert daemon.process is not None
        assert daemon.process.wait(20) == 0
    assert daemon.lines()[-1]["event"] == "rosterdrop stopped"
