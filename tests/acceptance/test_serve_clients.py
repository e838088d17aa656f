"""Districts as the operator sets them up and as their SIS uploads: the real `rosterdrop`
commands, and three SFTP clients nobody here wrote — paramiko, OpenSSH's sftp, curl."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.drop import District, roster_ids, sftp_session, upload
from tests.support.process import Daemon, wait_until
from tests.support.site import Site

PASSWORD = "district-chosen-password-1"
SSH_OPTIONS = [
    "-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
    "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
]  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, host_keys: Path) -> Iterator[Site]:
    """One installation for the module: each test adds a tenant of its own."""
    site = Site.create(tmp_path_factory.mktemp("clients"), host_keys)
    yield site
    site.close()


@pytest.fixture(scope="module")
def daemon(site: Site) -> Iterator[Daemon]:
    with site.daemon() as running:
        running.ready()
        yield running
        assert running.stop() == 0


def add_tenant(site: Site, name: str, *args: str, stdin: str | None = None) -> None:
    done = site.cli("tenant", "add", name, "--email", f"admin@{name}.example.org", *args,
                    stdin=stdin)  # fmt: skip
    assert done.returncode == 0, done.stderr


def imported_roster(site: Site, tenant: str, district: District) -> dict[str, list[dict]]:
    """Wait for the tenant's import; then the roster as `rosterdrop roster show --json` says."""
    rows = wait_until(
        lambda: [r for r in site.imports(tenant) if r["archived_at"]], 30, "the import to end"
    )
    assert [r["state"] for r in rows] == ["imported"]
    shown = site.cli("roster", "show", "--tenant", tenant, "--json")
    assert shown.returncode == 0, shown.stderr
    roster: dict[str, list[dict]] = json.loads(shown.stdout)
    assert roster_ids(roster, "students", "student_id") == set(district.student_ids())
    assert roster_ids(roster, "schools", "school_id") == set(district.schools)
    assert len(roster["enrollments"]) == 2 * district.students
    return roster


def test_paramiko_with_a_password_from_tenant_add(site: Site, daemon: Daemon) -> None:
    add_tenant(site, "acme", "--password-stdin", stdin=PASSWORD + "\n")
    district = District("acme", students=25)
    with sftp_session(daemon.sftp_port, "acme", PASSWORD) as sftp:
        upload(sftp, district.files())
    roster = imported_roster(site, "acme", district)
    names = {(s["first_name"], s["last_name"]) for s in roster["students"]}
    assert ("Zoë", "O'Brien 0") in names  # bytes and quoting survive the whole trip


def test_openssh_sftp_batch_with_a_key_from_tenant_add_key(
    site: Site, daemon: Daemon, tmp_path: Path
) -> None:
    key = tmp_path / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "sis@district", "-f", str(key)],
        check=True,
    )
    add_tenant(site, "keyed", "--no-password")
    added = site.cli("tenant", "add-key", "keyed", str(key.with_suffix(".pub")))
    assert added.returncode == 0, added.stderr
    district = District("keyed", students=30)
    local = district.write(tmp_path / "export")
    batch = "cd /upload\n" + "".join(f"put {local / name}\n" for name in district.files())
    done = subprocess.run(
        ["sftp", "-b", "-", "-P", str(daemon.sftp_port), *SSH_OPTIONS, "-i", str(key),
         "keyed@127.0.0.1"],
        input=batch, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    imported_roster(site, "keyed", district)


def test_curl_with_a_password(site: Site, daemon: Daemon, tmp_path: Path) -> None:
    add_tenant(site, "curly", "--password-stdin", stdin=PASSWORD + "\n")
    district = District("curly", students=35)
    local = district.write(tmp_path / "export")
    files = ",".join(district.files())
    done = subprocess.run(
        ["curl", "--silent", "--show-error", "--insecure", "--user", f"curly:{PASSWORD}",
         "--upload-file", f"{local}/{{{files}}}", f"sftp://127.0.0.1:{daemon.sftp_port}/upload/"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    imported_roster(site, "curly", district)
