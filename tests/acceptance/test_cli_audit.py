"""Every change an operator makes from the shell is in the audit log, as the web's are: who
(the OS user, `(cli)`, or `--by`), what, and the address `cli`, once per change."""

from __future__ import annotations

import getpass
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from daemon.store.tables import audit_log
from tests.support.site import Site

ME = f"{getpass.getuser()} (cli)"


def entries(site: Site) -> list[tuple[str, str, str, str | None]]:
    """(who, action, detail, address) of every entry, oldest first."""
    with site.db() as db, db.read() as conn:
        rows = conn.execute(sa.select(audit_log).order_by(audit_log.c.id)).mappings()
        return [(r["user_name"], r["action"], r["detail"], r["address"]) for r in rows]


def ok(site: Site, *args: str, stdin: str | None = None) -> None:
    done = site.cli(*args, stdin=stdin)
    assert done.returncode == 0, done.stderr


def test_each_tenant_command_leaves_its_entry(
    make_site: Callable[..., Site], tmp_path: Path
) -> None:
    site = make_site()
    ok(site, "tenant", "add", "acme", "--email", "ops@acme.example.org", "--no-password")
    ok(site, "tenant", "set", "acme", "--email", "new@acme.example.org")
    ok(site, "tenant", "set", "acme", "--max-deactivate-percent", "20", "--grade-rule", "K=KG")
    ok(site, "tenant", "set", "acme", "--allow-from", "192.0.2.0/24", "--keep-extra-columns")
    ok(site, "tenant", "passwd", "acme", "--password-stdin", stdin="a-new-sftp-password\n")
    key = tmp_path / "id.pub"
    key.write_text(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFHQQ+4bQaPB241NUyyDTSiwqIkc33Ir8WKgIE5n/yp8 sis\n"
    )
    ok(site, "tenant", "add-key", "acme", str(key))
    ok(site, "tenant", "add-key", "acme", str(key))  # the same key again changes nothing
    ok(site, "tenant", "unban", "acme", "--by", "ops@example.org")
    ok(site, "tenant", "disable", "acme")
    ok(site, "tenant", "enable", "acme")
    assert site.cli("tenant", "passwd", "nowhere").returncode == 2  # no change, no entry
    logged = entries(site)
    assert [(who, action, address) for who, action, _, address in logged] == [
        (ME, "tenant_added", "cli"), (ME, "emails", "cli"), (ME, "grade_rules", "cli"),
        (ME, "thresholds", "cli"), (ME, "tenant_settings", "cli"),
        (ME, "allowed_networks", "cli"), (ME, "sftp_password", "cli"),
        (ME, "public_key_added", "cli"), ("ops@example.org", "bans_lifted", "cli"),
        (ME, "tenant_disabled", "cli"), (ME, "tenant_enabled", "cli"),
    ]  # fmt: skip
    details = [detail for _, _, detail, _ in logged]
    assert details[1] == "new@acme.example.org"
    assert details[2] == "grade_rules={'K': 'KG'}"
    assert details[3] == "max_deactivate_percent=20.0"
    assert details[5] == "192.0.2.0/24"
    assert details[7].startswith("ssh-ed25519 SHA256:")
    assert details[7].endswith(" sis")
    assert "a-new-sftp-password" not in repr(logged)


def test_each_user_command_leaves_its_entry(make_site: Callable[..., Site]) -> None:
    site = make_site()
    site.add_tenant("acme")
    ok(site, "user", "add", "reg", "--tenant", "acme", "--password-stdin", stdin="a-password-12\n")
    ok(site, "user", "passwd", "reg", "--password-stdin", stdin="another-one-12\n")
    ok(site, "user", "disable", "reg")
    ok(site, "user", "enable", "reg")
    ok(site, "user", "totp", "reg")
    ok(site, "user", "token", "reg", "--label", "ci")
    ok(site, "user", "remove", "reg")
    assert [(who, action, detail, address) for who, action, detail, address in entries(site)] == [
        (ME, "user_added", "user reg (administrator of acme)", "cli"),
        (ME, "password_set", "user reg; its sessions ended, its API tokens revoked", "cli"),
        (ME, "user_disabled", "user reg", "cli"),
        (ME, "user_enabled", "user reg", "cli"),
        (ME, "totp_enrolled", "user reg", "cli"),
        (ME, "token_created", "user reg, token #1 ci", "cli"),
        (ME, "user_removed", "user reg (acme)", "cli"),
    ]  # fmt: skip
