"""Reading the settings: embedded defaults, then a TOML file, then ROSTERDROP_* variables."""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from daemon.config.settings import (
    CONFIG_ENV,
    DEFAULT_CONFIG_FILE,
    ENV_PREFIX,
    PASSWORD_FILE_ENV,
    SMTP_PASSWORD_CREDENTIAL,
    Secret,
    Settings,
)
from daemon.errors import ConfigError


@dataclass(frozen=True)
class Key:
    """One setting: its dotted name in the TOML file, its environment variable, its default."""

    dotted: str
    env: str
    default: Any


def keys(cls: type[Any] = Settings, path: str = "") -> list[Key]:
    """Every setting, in the order the classes declare them (for documentation and checks)."""
    hints = typing.get_type_hints(cls)
    found: list[Key] = []
    for f in dataclasses.fields(cls):
        if "derived" in f.metadata:
            continue
        dotted = f"{path}{f.metadata.get('key', f.name)}"
        if dataclasses.is_dataclass(hints[f.name]):
            found.extend(keys(typing.cast(type[Any], hints[f.name]), f"{dotted}."))
            continue
        factory: Any = f.default_factory
        default = f.default if factory is dataclasses.MISSING else factory()
        found.append(Key(dotted, _env_name(f, dotted), default))
    return found


def unknown_env(environ: Mapping[str, str] | None = None) -> list[str]:
    """ROSTERDROP_* variables that name no setting: most likely typos, and otherwise ignored."""
    env = os.environ if environ is None else environ
    known = {k.env for k in keys()} | {CONFIG_ENV, PASSWORD_FILE_ENV}
    return sorted(name for name in env if name.startswith(ENV_PREFIX) and name not in known)


def config_file_in_use(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    default: Path = DEFAULT_CONFIG_FILE,
) -> Path | None:
    """--config, else $ROSTERDROP_CONFIG, else DEFAULT_CONFIG_FILE when it exists."""
    env = os.environ if environ is None else environ
    if config_file is not None:
        return config_file
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    return default if default.is_file() else None


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    default_file: Path = DEFAULT_CONFIG_FILE,
) -> Settings:
    """Build the settings once: defaults, the TOML file, then the environment."""
    env = os.environ if environ is None else environ
    config_file = config_file_in_use(config_file, env, default_file)
    data: dict[str, Any] = {}
    if config_file is not None:
        try:
            data = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {config_file} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {config_file}: {exc}") from None
    settings = _build(Settings, data, env, path="")
    settings = _resolve_secrets(settings, env)
    data_dir = settings.data_dir.expanduser().absolute()
    url = settings.database_url or f"sqlite:///{data_dir / 'rosterdrop.db'}"
    return dataclasses.replace(settings, data_dir=data_dir, database_url=url)


def _build(cls: type[Any], table: Mapping[str, Any], env: Mapping[str, str], path: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {
        f.metadata.get("key", f.name): f
        for f in dataclasses.fields(cls)
        if "derived" not in f.metadata
    }
    for key in table:
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"unknown setting {path}{key!s} (known here: {known})")
    values: dict[str, Any] = {}
    for key, f in fields.items():
        hint = hints[f.name]
        dotted = f"{path}{key}"
        if dataclasses.is_dataclass(hint):
            sub = table.get(key, {})
            if not isinstance(sub, Mapping):
                raise ConfigError(f"setting {dotted} must be a table")
            values[f.name] = _build(typing.cast(type[Any], hint), sub, env, path=f"{dotted}.")
            continue
        env_name = _env_name(f, dotted)
        if env_name in env:
            name, raw, from_env = f"{env_name} ({dotted})", env[env_name], True
        elif key in table:
            name, raw, from_env = dotted, table[key], False
        else:
            continue
        value = _coerce(hint, raw, name, from_env=from_env)
        if "max" in f.metadata and value > f.metadata["max"]:
            raise ConfigError(f"setting {name} must be at most {f.metadata['max']}, not {raw!r}")
        values[f.name] = value
    return cls(**values)


def _env_name(f: dataclasses.Field[Any], dotted: str) -> str:
    return str(f.metadata.get("env") or ENV_PREFIX + dotted.replace(".", "_").upper())


def _coerce(hint: Any, raw: Any, name: str, *, from_env: bool) -> Any:
    origin = get_origin(hint)
    if origin is Literal:
        choices = get_args(hint)
        value = str(raw).strip().lower()
        if value not in choices:
            raise ConfigError(f"setting {name} must be one of {', '.join(choices)}, not {raw!r}")
        return value
    if origin is tuple:
        items = [s.strip() for s in raw.split(",")] if from_env else raw
        if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
            raise ConfigError(f"setting {name} must be a list of strings")
        return tuple(s for s in items if s)
    if origin in (types.UnionType, typing.Union):
        raise ConfigError(f"setting {name} has an unsupported type")  # pragma: no cover
    try:
        if hint is bool:
            return _to_bool(raw)
        if hint is int and not isinstance(raw, bool | float):
            whole = int(raw)
            if whole < 0:
                raise ValueError
            return whole
        if hint is float and not isinstance(raw, bool):
            number = float(raw)
            if number < 0:
                raise ValueError
            return number
        if hint is Path:
            return Path(str(raw))
        if hint is Secret:
            return Secret(str(raw))
        if hint is str and (from_env or isinstance(raw, str)):
            return str(raw)
    except ValueError:
        pass
    raise ConfigError(f"setting {name} must be {_type_name(hint)}, not {raw!r}")


def _to_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def _type_name(hint: Any) -> str:
    return {bool: "true or false", int: "a whole number ≥ 0", float: "a non-negative number"}.get(
        hint, "a string"
    )


def _resolve_secrets(settings: Settings, env: Mapping[str, str]) -> Settings:
    """Fill an unset SMTP password from ROSTERDROP_SMTP_PASSWORD_FILE or a systemd credential."""
    if settings.smtp.password:
        return settings
    candidates = []
    if env.get(PASSWORD_FILE_ENV):
        candidates.append(Path(env[PASSWORD_FILE_ENV]))
    if env.get("CREDENTIALS_DIRECTORY"):
        candidates.append(Path(env["CREDENTIALS_DIRECTORY"]) / SMTP_PASSWORD_CREDENTIAL)
    for candidate in candidates:
        if candidate.is_file():
            secret = Secret(candidate.read_text(encoding="utf-8").strip())
            return dataclasses.replace(
                settings, smtp=dataclasses.replace(settings.smtp, password=secret)
            )
    return settings


def redacted(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data, secrets masked: what `config check` prints."""

    def convert(obj: Any) -> Any:
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            out = {}
            for f in dataclasses.fields(obj):
                if "derived" in f.metadata:
                    continue
                out[f.metadata.get("key", f.name)] = convert(getattr(obj, f.name))
            return out
        if isinstance(obj, Secret):
            return "********" if obj else ""
        if isinstance(obj, Path):
            return str(obj)
        if isinstance(obj, tuple):
            return list(obj)
        return obj

    result: dict[str, Any] = convert(settings)
    result["database_url"] = redact_url(settings.database_url)
    return result


def redact_url(url: str) -> str:
    """Hide the password in a database URL."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user, has_password, _ = creds.partition(":")
    return f"{scheme}://{user}{':********' if has_password else ''}@{host}"
