"""`rosterdrop config check` as an operator runs it: effective settings with secrets hidden,
and every mistake named (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.process import cli

SMTP_SECRET = "smtp-Secret-4417"
DB_SECRET = "db-Secret-9902"


def test_config_check_prints_the_effective_settings_with_secrets_hidden(tmp_path: Path) -> None:
    config = tmp_path / "rosterdrop.toml"
    config.write_text(
        '[sftp]\nport = 22\n[smtp]\nhost = "relay.example.org"\nusername = "mailer"\n',
        encoding="utf-8",
    )
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "smtp_password").write_text(SMTP_SECRET, encoding="utf-8")
    env = {
        "ROSTERDROP_CONFIG": str(config),
        "CREDENTIALS_DIRECTORY": str(credentials),  # what systemd's LoadCredential= sets
        "ROSTERDROP_DATABASE_URL": f"postgresql+psycopg://app:{DB_SECRET}@db.internal/roster",
        "ROSTERDROP_SFTP_PORT": "2200",  # the environment wins over the file
        "ROSTERDROP_SMTP_HOTS": "typo.example.org",
    }
    result = cli(env, "config", "check")
    assert result.returncode == 0, result.stderr
    assert SMTP_SECRET not in result.stdout + result.stderr
    assert DB_SECRET not in result.stdout + result.stderr
    shown = json.loads(result.stdout)
    assert shown["smtp"]["password"] == "********"
    assert shown["database_url"] == "postgresql+psycopg://app:********@db.internal/roster"
    assert (shown["sftp"]["port"], shown["smtp"]["host"]) == (2200, "relay.example.org")
    assert "ROSTERDROP_SMTP_HOTS is not a setting" in result.stderr


def test_config_check_names_the_unknown_key_and_the_bad_value(tmp_path: Path) -> None:
    config = tmp_path / "rosterdrop.toml"
    config.write_text('[smtp]\nhots = "relay.example.org"\n', encoding="utf-8")
    unknown = cli({}, "config", "check", str(config))
    assert unknown.returncode == 2
    assert "unknown setting smtp.hots" in unknown.stderr
    assert unknown.stdout == ""

    bad = cli({"ROSTERDROP_SFTP_PORT": "ssh"}, "config", "check")
    assert bad.returncode == 2
    assert "ROSTERDROP_SFTP_PORT (sftp.port) must be a whole number" in bad.stderr
