"""Typed, frozen settings: embedded defaults, then a TOML file, then ROSTERDROP_* variables.

`settings` declares them (one dataclass per section), `loading` reads them; this is where the
rest of the daemon imports them from.
"""

from daemon.config.loading import (
    Key,
    config_file_in_use,
    keys,
    load_settings,
    redact_url,
    redacted,
    unknown_env,
)
from daemon.config.settings import (
    CONFIG_ENV,
    DEFAULT_CONFIG_FILE,
    DEFAULT_WEB_PORT,
    MAX_API_TOKEN_DAYS,
    MAX_PASSWORD_LINK_HOURS,
    SMTP_PASSWORD_CREDENTIAL,
    ClusterSettings,
    DataPaths,
    HttpSettings,
    LogSettings,
    Secret,
    ServiceSettings,
    Settings,
    SftpSettings,
    SmtpSettings,
    SpoolSettings,
    WebSettings,
    WindowSettings,
)

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_FILE",
    "DEFAULT_WEB_PORT",
    "MAX_API_TOKEN_DAYS",
    "MAX_PASSWORD_LINK_HOURS",
    "SMTP_PASSWORD_CREDENTIAL",
    "ClusterSettings",
    "DataPaths",
    "HttpSettings",
    "Key",
    "LogSettings",
    "Secret",
    "ServiceSettings",
    "Settings",
    "SftpSettings",
    "SmtpSettings",
    "SpoolSettings",
    "WebSettings",
    "WindowSettings",
    "config_file_in_use",
    "keys",
    "load_settings",
    "redact_url",
    "redacted",
    "unknown_env",
]
