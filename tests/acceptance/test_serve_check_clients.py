"""A district testing its export against /check with the clients its SIS uses — OpenSSH's
sftp and curl (paramiko: tests/integration/test_serve_check.py) — on the real `rosterdrop
serve`, and reading the answer with `rosterdrop checks`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.acceptance import test_serve_clients as clients
from tests.support.drop import District
from tests.support.process import Daemon, wait_until
from tests.support.site import Site

PASSWORD = "district-chosen-password-2"
SSH_OPTIONS, add_tenant = clients.SSH_OPTIONS, clients.add_tenant
# The clients module's fixtures, registered here too: a daemon of this module's own.
site, daemon = clients.site, clients.daemon


def checked(site: Site, tenant: str) -> dict[str, Any]:
    """Wait for the tenant's check to end; then `rosterdrop checks list --json`'s entry."""

    def listed() -> list[dict[str, Any]] | None:
        done = site.cli("checks", "list", "--tenant", tenant, "--json")
        assert done.returncode == 0, done.stderr
        rows: list[dict[str, Any]] = json.loads(done.stdout)
        return rows if rows and rows[0]["archived"] else None

    [row] = wait_until(listed, 30, "the check to end")
    return row


def test_openssh_sftp_checks_fetches_and_deletes_the_answer(
    site: Site, daemon: Daemon, tmp_path: Path
) -> None:
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    add_tenant(site, "keyed", "--no-password")
    assert site.cli("tenant", "add-key", "keyed", str(key.with_suffix(".pub"))).returncode == 0
    district = District("keyed", students=30)
    local = district.write(tmp_path / "export")
    sftp = ["sftp", "-b", "-", "-P", str(daemon.sftp_port), *SSH_OPTIONS, "-i", str(key),
            "keyed@127.0.0.1"]  # fmt: skip

    def batch(commands: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            sftp, input=commands, capture_output=True, text=True, timeout=60, check=False
        )

    put = batch("cd /check\n" + "".join(f"put {local / name}\n" for name in district.files()))
    assert put.returncode == 0, put.stdout + put.stderr
    row = checked(site, "keyed")
    assert row["outcome"] == "import"
    name = row["results"]
    fetched = tmp_path / "fetched"
    fetched.mkdir()
    got = batch(f"lcd {fetched}\nget /check/results/{name}-report.txt\nls /check\n")
    assert got.returncode == 0, got.stdout + got.stderr
    report = (fetched / f"{name}-report.txt").read_text(encoding="utf-8")
    assert "would be IMPORTED" in report
    assert "students.csv" in report
    # The checked files left /check; the client deletes the answer it fetched.
    assert "students.csv" not in got.stdout
    assert batch(f"rm /check/results/{name}-report.txt\n").returncode == 0
    listed = batch("ls /check/results\n").stdout
    assert f"{name}-report.txt" not in listed
    assert f"{name}-report.json" in listed
    # Never an import; `checks show` prints the same report.
    assert site.imports("keyed") == []
    shown = site.cli("checks", "show", str(row["id"]))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == report


def test_curl_checks_and_downloads_the_answer(site: Site, daemon: Daemon, tmp_path: Path) -> None:
    add_tenant(site, "curly", "--password-stdin", stdin=PASSWORD + "\n")
    switched = site.cli("checks", "email", "curly", "on")  # the answer by email too
    assert switched.returncode == 0, switched.stderr
    assert site.cli("checks", "email", "nobody", "on").returncode == 2
    district = District("curly", students=35)
    files = district.files()
    files["teachers.csv"] = files["teachers.csv"].replace(b"t0@example.org", b"not-an-email")
    local = tmp_path / "export"
    local.mkdir()
    for file_name, data in files.items():
        (local / file_name).write_bytes(data)
    base = f"sftp://127.0.0.1:{daemon.sftp_port}"
    curl = ["curl", "--silent", "--show-error", "--insecure", "--user", f"curly:{PASSWORD}"]
    names = ",".join(files)
    done = subprocess.run(
        [*curl, "--upload-file", f"{local}/{{{names}}}", f"{base}/check/"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    row = checked(site, "curly")
    assert row["outcome"] == "pause"  # a row error: this district allows none
    answer = subprocess.run(
        [*curl, f"{base}/check/results/{row['results']}-report.json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert answer.returncode == 0, answer.stderr
    data = json.loads(answer.stdout)
    assert data["check"] == row["id"]
    assert [t["rule"] for t in data["tripped"]] == ["row_errors"]
    problems = subprocess.run(
        [*curl, f"{base}/check/results/{row['results']}-problems.csv"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert "teachers.csv" in problems.stdout
    assert "not-an-email" in problems.stdout
    assert site.imports("curly") == []
    [email] = wait_until(lambda: site.emails("check_results") or None, 30, "the email")
    assert email["import_id"] is None
