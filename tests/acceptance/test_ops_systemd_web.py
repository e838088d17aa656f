"""rosterdrop-web.service: the unit verifies and agrees with rosterdrop.service, and
`rosterdrop web` speaks the notify protocol (READY once it listens, WATCHDOG pings, RELOADING
then READY at SIGHUP, STOPPING at SIGTERM, exit 0)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.acceptance.test_ops_systemd import INSTALLED, SYSTEMD, UNIT, _directives, _tool
from tests.support.process import notify_socket, wait_until
from tests.support.site import Site

WEB_UNIT = SYSTEMD / "rosterdrop-web.service"


@pytest.mark.systemd
def test_the_web_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = _tool("systemd-analyze")
    command = Path(sys.executable).with_name("rosterdrop")
    copy = tmp_path / "rosterdrop-web.service"
    copy.write_text(WEB_UNIT.read_text().replace(INSTALLED, str(command)))
    result = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


def test_the_web_unit_runs_rosterdrop_web_as_the_daemon_runs() -> None:
    web, serve = _directives(WEB_UNIT.read_text()), _directives(UNIT.read_text())
    assert web["ExecStart"] == [f"{INSTALLED} web"]
    assert web["Type"] == ["notify"]
    for same in ("User", "Environment", "StateDirectory", "ReadWritePaths", "WorkingDirectory"):
        assert web[same] == serve[same], same
    assert web["CapabilityBoundingSet"] == [""], "no capability for port 8000"
    assert "LoadCredential" not in web, "it sends no email: no SMTP password"


def test_rosterdrop_web_under_systemd_ready_watchdog_reload_stopping(
    make_site: Callable[..., Site],
) -> None:
    site = make_site()
    config = site.root / "rosterdrop.toml"
    config.write_text('[log]\nlevel = "warning"\n', encoding="utf-8")
    env = {"ROSTERDROP_CONFIG": str(config), "WATCHDOG_USEC": "300000"}
    process = site.daemon("web", **env)
    with notify_socket() as notify:
        process.env["NOTIFY_SOCKET"] = notify.path
        process.argv = [sys.executable, "-m", "daemon", "web"]
        with process:
            ready = notify.wait_for("READY")
            assert ready["STATUS"].startswith("Import Manager at http://127.0.0.1:")
            assert ready["MAINPID"] == str(process.pid)
            wait_until(
                lambda: notify.receive(1.0) is not None and notify.count("WATCHDOG") >= 3,
                5.0, "three watchdog pings", every=0,
            )  # fmt: skip
            config.write_text('[log]\nlevel = "info"\n', encoding="utf-8")
            process.send(signal.SIGHUP)
            assert int(notify.wait_for("RELOADING", 10)["MONOTONIC_USEC"]) > 0
            assert notify.wait_for("READY", 10)["STATUS"] == ready["STATUS"]
            assert process.wait_for("settings reloaded")["log_level"] == "info"
            assert process.stop() == 0
            assert notify.wait_for("STOPPING", 5)["STOPPING"] == "1"
