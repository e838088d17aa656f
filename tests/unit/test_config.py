"""Settings: the example file matches the defaults, and every mistake names its key."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from daemon import config
from daemon.config import Secret, keys, load_settings, redacted, unknown_env
from daemon.errors import ConfigError

EXAMPLE = Path(__file__).parents[2] / "config" / "rosterdrop.example.toml"


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _load(tmp_path: Path, text: str, **env: str) -> config.Settings:
    path = tmp_path / "rosterdrop.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, env)


def _error(tmp_path: Path, text: str, **env: str) -> str:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text, **env)
    return str(caught.value)


# -- the example file ------------------------------------------------------------------------


def test_the_example_file_sets_every_key_to_its_default() -> None:
    assert load_settings(EXAMPLE, {}) == load_settings(None, {})
    written = _flatten(tomllib.loads(EXAMPLE.read_text(encoding="utf-8")))
    assert list(written) == [k.dotted for k in keys()], "every key, in the classes' order"


def test_the_example_file_names_each_keys_environment_variable() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert [k.env for k in keys() if k.env not in text] == []


# -- mistakes name the key ---------------------------------------------------------------------


def test_an_unknown_key_is_named_with_the_keys_that_exist_there(tmp_path: Path) -> None:
    message = _error(tmp_path, "[sftp]\nprot = 22\n")
    assert "unknown setting sftp.prot" in message
    assert "port" in message
    assert "unknown setting colour" in _error(tmp_path, 'colour = "blue"\n')
    assert "unknown setting smtp.from_address" in _error(tmp_path, '[smtp]\nfrom_address = "x"\n')


@pytest.mark.parametrize(
    ("text", "named", "wanted"),
    [
        ('[sftp]\nport = "twenty-two"\n', "sftp.port", "a whole number"),
        ("[sftp]\nport = 70000\n", "sftp.port", "at most 65535"),
        ("[sftp]\nmax_sessions_per_tenant = -1\n", "sftp.max_sessions_per_tenant", "≥ 0"),
        ("[sftp]\nmax_sessions_per_tenant = 2.5\n", "sftp.max_sessions_per_tenant", "whole"),
        ("[spool]\nstale_hours = -1\n", "spool.stale_hours", "non-negative"),
        ('[http]\nenabled = "maybe"\n', "http.enabled", "true or false"),
        ('[log]\nlevel = "verbose"\n', "log.level", "debug, info, warning, error"),
        ('[smtp]\ntls = "ssl"\n', "smtp.tls", "starttls, tls, none"),
        ('[smtp]\ncopy_to = "ops@example.org"\n', "smtp.copy_to", "a list of strings"),
        ("[smtp]\nhost = 25\n", "smtp.host", "a string"),
        ("sftp = 22\n", "sftp", "a table"),
    ],
)
def test_a_bad_value_is_named(tmp_path: Path, text: str, named: str, wanted: str) -> None:
    message = _error(tmp_path, text)
    assert f"setting {named} " in message
    assert wanted in message


def test_a_bad_environment_value_names_the_variable_and_the_key(tmp_path: Path) -> None:
    message = _error(tmp_path, "", ROSTERDROP_SFTP_PORT="ssh")
    assert "ROSTERDROP_SFTP_PORT (sftp.port)" in message
    assert "'ssh'" in message
    assert "ROSTERDROP_LOG_LEVEL (log.level)" in _error(tmp_path, "", ROSTERDROP_LOG_LEVEL="loud")


def test_a_broken_or_missing_file_is_named(tmp_path: Path) -> None:
    assert "rosterdrop.toml" in _error(tmp_path, "[sftp\nport = 1\n")
    with pytest.raises(ConfigError, match=r"nowhere\.toml does not exist"):
        load_settings(tmp_path / "nowhere.toml", {})


def test_the_config_file_can_come_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "from-env.toml"
    path.write_text("[sftp]\nport = 2200\n", encoding="utf-8")
    assert load_settings(None, {"ROSTERDROP_CONFIG": str(path)}).sftp.port == 2200


# -- precedence ----------------------------------------------------------------------------------


def test_the_environment_overrides_the_file(tmp_path: Path) -> None:
    text = '[sftp]\nport = 2200\n[smtp]\nhost = "file.example.org"\ncopy_to = ["a@example.org"]\n'
    settings = _load(
        tmp_path,
        text,
        ROSTERDROP_SFTP_PORT="22",
        ROSTERDROP_SMTP_COPY_TO="ops@example.org, ,audit@example.org",
        ROSTERDROP_HTTP_ENABLED="no",
        ROSTERDROP_SETTLE_SECONDS="2.5",
    )
    assert settings.sftp.port == 22
    assert settings.smtp.host == "file.example.org"  # not overridden: the file's value stands
    assert settings.smtp.copy_to == ("ops@example.org", "audit@example.org")
    assert settings.http.enabled is False
    assert settings.spool.settle_seconds == 2.5


def test_relative_data_dir_becomes_absolute_and_holds_the_default_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = _load(tmp_path, 'data_dir = "state"\n')
    assert settings.data_dir == tmp_path / "state"
    assert settings.database_url == f"sqlite:///{tmp_path / 'state' / 'rosterdrop.db'}"


def test_unknown_rosterdrop_variables_are_reported() -> None:
    env = {"ROSTERDROP_SMTP_HOTS": "x", "ROSTERDROP_SMTP_HOST": "y", "ROSTERDROP_CONFIG": "z"}
    env |= {"ROSTERDROP_SMTP_PASSWORD_FILE": "f", "HOME": "/root"}
    assert unknown_env(env) == ["ROSTERDROP_SMTP_HOTS"]


# -- secrets ---------------------------------------------------------------------------------------


def test_secrets_never_show_in_repr_or_redacted_output(tmp_path: Path) -> None:
    settings = _load(
        tmp_path,
        '[smtp]\nusername = "mailer"\n',
        ROSTERDROP_SMTP_PASSWORD="s3cret-smtp-pw",
        ROSTERDROP_DATABASE_URL="postgresql+psycopg://app:s3cret-db-pw@db.internal:5432/roster",
    )
    assert settings.smtp.password.reveal() == "s3cret-smtp-pw"
    shown = f"{settings!r} {settings.smtp} {redacted(settings)}"
    assert "s3cret" not in shown.replace(settings.database_url, "")
    data = redacted(settings)
    assert data["smtp"]["password"] == "********"
    assert data["database_url"] == "postgresql+psycopg://app:********@db.internal:5432/roster"


def test_the_password_comes_from_a_systemd_credential(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "smtp_password").write_text("from-credential\n", encoding="utf-8")
    settings = _load(tmp_path, "", CREDENTIALS_DIRECTORY=str(credentials))
    assert settings.smtp.password == Secret("from-credential")
    # A password given explicitly wins over the credential.
    explicit = _load(
        tmp_path, "", CREDENTIALS_DIRECTORY=str(credentials), ROSTERDROP_SMTP_PASSWORD="explicit"
    )
    assert explicit.smtp.password == Secret("explicit")
    # An empty credential (no relay login) leaves the password unset.
    (credentials / "smtp_password").write_text("", encoding="utf-8")
    assert not _load(tmp_path, "", CREDENTIALS_DIRECTORY=str(credentials)).smtp.password


def test_the_password_comes_from_a_named_file(tmp_path: Path) -> None:
    secret = tmp_path / "smtp.pw"
    secret.write_text("from-file", encoding="utf-8")
    settings = _load(tmp_path, "", ROSTERDROP_SMTP_PASSWORD_FILE=str(secret))
    assert settings.smtp.password == Secret("from-file")
