"""The settings, typed and frozen: one dataclass per section, with its embedded defaults."""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from daemon.errors import ConfigError

CONFIG_ENV = "ROSTERDROP_CONFIG"
# Where the packaged install keeps its settings: used when neither --config nor
# ROSTERDROP_CONFIG names a file, so an operator's command sees what the daemon sees.
DEFAULT_CONFIG_FILE = Path("/etc/rosterdrop/rosterdrop.toml")
PASSWORD_FILE_ENV = "ROSTERDROP_SMTP_PASSWORD_FILE"  # noqa: S105 - a name, not a secret
# systemd's LoadCredential= puts the SMTP password in this file under $CREDENTIALS_DIRECTORY.
SMTP_PASSWORD_CREDENTIAL = "smtp_password"  # noqa: S105 - a file name
ENV_PREFIX = "ROSTERDROP_"
MAX_PORT = 65535

DEFAULT_DATA_DIR = Path("var")
DEFAULT_SFTP_PORT = 2222
DEFAULT_HTTP_PORT = 8080
DEFAULT_SETTLE_SECONDS = 30.0
DEFAULT_RETENTION_DAYS = 30
DEFAULT_STALE_HOURS = 24.0
DEFAULT_WEB_PORT = 8000
# Web sessions: signed out after this long without a request, and this long after sign-in.
DEFAULT_SESSION_IDLE_MINUTES = 30.0
DEFAULT_SESSION_MAX_HOURS = 12.0
# Failed sign-ins: this many per address (or per username) within the window, then a wait.
DEFAULT_SIGNIN_FAILURES = 5
DEFAULT_SIGNIN_WINDOW_SECONDS = 300.0
DEFAULT_SIGNIN_LOCK_SECONDS = 300.0
# Accounts (docs/web.md "Accounts"): how long a one-time password link and an API token live.
DEFAULT_PASSWORD_LINK_HOURS = 48.0
DEFAULT_API_TOKEN_DAYS = 90.0
MAX_PASSWORD_LINK_HOURS = 30 * 24.0  # a link in a mailbox is a password waiting to be used
MAX_API_TOKEN_DAYS = 3650.0
# Uploads in the browser (docs/web.md, "Choose Files"): per file as [sftp] max_file_bytes; the
# five together well below [sftp] tenant_quota_bytes; a checked set waits this long.
DEFAULT_UPLOAD_MAX_FILE_BYTES = 1 << 30
DEFAULT_UPLOAD_MAX_BYTES = 2 << 30
DEFAULT_UPLOAD_PENDING_MINUTES = 60.0
# Pause windows: their days are counted in this zone; `serve` looks for one starting or ending
# this often (a notice or a release is at most this late), within these bounds.
DEFAULT_WINDOW_TIMEZONE = "UTC"
DEFAULT_WINDOW_CHECK_SECONDS = 300.0
MIN_WINDOW_CHECK_SECONDS = 1.0
MAX_WINDOW_CHECK_SECONDS = 3600.0


class Secret:
    """A string that never shows itself in a repr, a log line or `config check`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('********')" if self._value else "Secret('')"

    __str__ = __repr__


def _env(name: str) -> dict[str, Any]:
    """Field metadata: the environment variable that overrides this key."""
    return {"env": name}


def _port(name: str) -> dict[str, Any]:
    """Field metadata of a TCP port (0: any free port, for tests)."""
    return {"env": name, "max": MAX_PORT}


@dataclass(frozen=True)
class SftpSettings:
    host: str = field(default="0.0.0.0", metadata=_env("ROSTERDROP_SFTP_HOST"))  # noqa: S104
    port: int = field(default=DEFAULT_SFTP_PORT, metadata=_port("ROSTERDROP_SFTP_PORT"))
    max_file_bytes: int = 1 << 30
    tenant_quota_bytes: int = 5 << 30
    max_sessions_per_tenant: int = 8
    login_timeout: float = 30.0
    idle_timeout: float = 900.0
    max_auth_failures: int = 5
    auth_failure_window: float = 300.0
    ban_seconds: float = 600.0
    # Login throttling past the first ban: see docs/logins.md for what each bound costs whom.
    ban_growth: float = 2.0
    max_ban_seconds: float = 86400.0
    user_delay_seconds: float = 5.0
    user_max_wait_seconds: float = 15.0
    # Holding under floods (README, "Bounds under attack"): unauthenticated connections as
    # OpenSSH's MaxStartups begin:rate:full and PerSourceMaxStartups, a descriptor reserve.
    max_startups_begin: int = 100
    max_startups_rate: int = 30  # percent refused at `begin`, growing to 100 at max_startups
    max_startups: int = 300  # 0: no bound
    max_startups_per_source: int = 50  # 0: no bound (behind a load balancer that hides sources)
    reserved_descriptors: int = 128
    # What one tenant may hold across all its sessions.
    max_open_files_per_tenant: int = 64
    max_files_per_tenant: int = 200  # files in /upload, empty ones included
    max_sets_per_hour: int = 6  # 0: no bound


@dataclass(frozen=True)
class SpoolSettings:
    settle_seconds: float = field(
        default=DEFAULT_SETTLE_SECONDS, metadata=_env("ROSTERDROP_SETTLE_SECONDS")
    )
    rescan_seconds: float = 15.0
    stale_hours: float = DEFAULT_STALE_HOURS
    retention_days: int = DEFAULT_RETENTION_DAYS
    workers: int = 2
    # An import stopped by a full disk waits this long, then tries again (not counted).
    no_space_retry_seconds: float = 30.0


TlsMode = Literal["starttls", "tls", "none"]


@dataclass(frozen=True)
class SmtpSettings:
    host: str = field(default="", metadata=_env("ROSTERDROP_SMTP_HOST"))
    port: int = field(default=587, metadata=_port("ROSTERDROP_SMTP_PORT"))
    from_address: str = field(
        default="rosterdrop@localhost", metadata={"env": "ROSTERDROP_SMTP_FROM", "key": "from"}
    )
    tls: TlsMode = "starttls"
    username: str = ""
    password: Secret = field(default_factory=lambda: Secret(""))
    timeout: float = 30.0
    copy_to: tuple[str, ...] = ()
    retry_initial_seconds: float = 30.0
    retry_max_seconds: float = 3600.0
    # Not a setting of its own: [web] public_url, copied in by Settings so that the emails
    # (rendered with these settings) can link to an import's page. Empty: no links.
    web_url: str = field(default="", metadata={"derived": "web.public_url"})


@dataclass(frozen=True)
class HttpSettings:
    enabled: bool = True
    host: str = field(default="127.0.0.1", metadata=_env("ROSTERDROP_HTTP_HOST"))
    port: int = field(default=DEFAULT_HTTP_PORT, metadata=_port("ROSTERDROP_HTTP_PORT"))


@dataclass(frozen=True)
class WebSettings:
    """The Import Manager's own listener (never the ops listener's /healthz and /metrics)."""

    enabled: bool = True
    host: str = field(default="127.0.0.1", metadata=_env("ROSTERDROP_WEB_HOST"))
    port: int = field(default=DEFAULT_WEB_PORT, metadata=_port("ROSTERDROP_WEB_PORT"))
    # The address people reach it at (behind a TLS proxy: https://…); emails link to it, and
    # https makes the session cookie Secure. Empty: emails carry no links.
    public_url: str = field(default="", metadata=_env("ROSTERDROP_WEB_PUBLIC_URL"))
    session_idle_minutes: float = DEFAULT_SESSION_IDLE_MINUTES
    session_max_hours: float = DEFAULT_SESSION_MAX_HOURS
    signin_max_failures: int = DEFAULT_SIGNIN_FAILURES
    signin_failure_window: float = DEFAULT_SIGNIN_WINDOW_SECONDS
    signin_lock_seconds: float = DEFAULT_SIGNIN_LOCK_SECONDS
    # Built-in TLS (PEM files, both or neither): HTTPS on this listener, cookies Secure.
    tls_cert: str = field(default="", metadata=_env("ROSTERDROP_WEB_TLS_CERT"))
    tls_key: str = field(default="", metadata=_env("ROSTERDROP_WEB_TLS_KEY"))
    # Reverse proxies (addresses or CIDRs) whose X-Forwarded-For and X-Forwarded-Proto are
    # believed; from any other sender those headers are ignored. None by default.
    trusted_proxies: tuple[str, ...] = field(
        default=(), metadata=_env("ROSTERDROP_WEB_TRUSTED_PROXIES")
    )
    # Accounts: invitation and "forgot password" links, TOTP, API tokens.
    password_link_hours: float = DEFAULT_PASSWORD_LINK_HOURS
    require_totp_for_operators: bool = False
    api_token_days: float = DEFAULT_API_TOKEN_DAYS
    # Choose Files: the largest file and the five together (0: no bound), and how long a
    # checked upload waits for Process Import (0: until processed, discarded or replaced).
    upload_max_file_bytes: int = DEFAULT_UPLOAD_MAX_FILE_BYTES
    upload_max_bytes: int = DEFAULT_UPLOAD_MAX_BYTES
    upload_pending_minutes: float = DEFAULT_UPLOAD_PENDING_MINUTES

    def __post_init__(self) -> None:
        for name, most in (
            ("password_link_hours", MAX_PASSWORD_LINK_HOURS),
            ("api_token_days", MAX_API_TOKEN_DAYS),
        ):
            value = getattr(self, name)
            if not 0 < value <= most:
                raise ConfigError(
                    f"setting web.{name} must be above 0 and at most {most:g}, not {value}"
                )
        if bool(self.tls_cert) != bool(self.tls_key):
            given, missing = ("tls_cert", "tls_key") if self.tls_cert else ("tls_key", "tls_cert")
            raise ConfigError(f"setting web.{given} is set but web.{missing} is not: set both")
        self.proxy_networks()  # a bad entry is named at start-up, not at the first request

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert)

    @property
    def secure_cookies(self) -> bool:
        """Always Secure: served over TLS here, or public_url says https (a TLS proxy)."""
        return self.tls or self.public_url.lower().startswith("https://")

    def proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        networks = []
        for entry in self.trusted_proxies:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ConfigError(
                    f"setting web.trusted_proxies: {entry!r} is not an IP address or network"
                    " (such as 127.0.0.1 or 10.0.0.0/8)"
                ) from None
        return tuple(networks)


LogFormat = Literal["auto", "json", "console"]
LogLevel = Literal["debug", "info", "warning", "error"]


@dataclass(frozen=True)
class LogSettings:
    level: LogLevel = "info"
    format: LogFormat = "auto"


@dataclass(frozen=True)
class ServiceSettings:
    shutdown_timeout: float = 30.0
    public_host: str = ""  # the host name districts are told to use; defaults to this machine's


# Several daemons on one PostgreSQL (docs/operations.md): a node renews its lease this often,
# and is taken for dead (its imports run elsewhere) once the lease has run out.
DEFAULT_HEARTBEAT_SECONDS = 2.0
DEFAULT_LEASE_SECONDS = 10.0


@dataclass(frozen=True)
class ClusterSettings:
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    node_name: str = ""  # shown by `cluster status`; empty: this machine's name and the pid

    def __post_init__(self) -> None:
        if self.heartbeat_seconds <= 0:
            raise ConfigError(
                f"setting cluster.heartbeat_seconds must be above 0, not {self.heartbeat_seconds}"
            )
        if self.lease_seconds < 2 * self.heartbeat_seconds:
            # One late heartbeat must not make a live node look dead.
            raise ConfigError(
                "setting cluster.lease_seconds must be at least twice"
                f" cluster.heartbeat_seconds ({2 * self.heartbeat_seconds:g}),"
                f" not {self.lease_seconds:g}"
            )


@dataclass(frozen=True)
class WindowSettings:
    """Pause windows (docs/school-year.md): the days they are counted in, how often `serve`
    looks for a window starting or ending, and the window a new tenant starts with."""

    timezone: str = DEFAULT_WINDOW_TIMEZONE
    check_seconds: float = DEFAULT_WINDOW_CHECK_SECONDS
    new_tenant: str = ""  # MM-DD..MM-DD: a yearly window for every tenant added; "": none

    def __post_init__(self) -> None:
        from daemon.roster import windows

        try:
            windows.time_zone(self.timezone)
            if self.new_tenant:
                windows.yearly_rule(self.new_tenant)
        except ConfigError as exc:
            raise ConfigError(f"setting windows: {exc}") from None
        low, high = MIN_WINDOW_CHECK_SECONDS, MAX_WINDOW_CHECK_SECONDS
        if not low <= self.check_seconds <= high:
            raise ConfigError(
                f"setting windows.check_seconds must be between {low:g} and {high:g},"
                f" not {self.check_seconds:g}"
            )

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default=DEFAULT_DATA_DIR, metadata=_env("ROSTERDROP_DATA_DIR"))
    database_url: str = field(default="", metadata=_env("ROSTERDROP_DATABASE_URL"))
    sftp: SftpSettings = SftpSettings()
    spool: SpoolSettings = SpoolSettings()
    smtp: SmtpSettings = SmtpSettings()
    http: HttpSettings = HttpSettings()
    web: WebSettings = WebSettings()
    log: LogSettings = LogSettings()
    service: ServiceSettings = ServiceSettings()
    cluster: ClusterSettings = ClusterSettings()
    windows: WindowSettings = WindowSettings()

    def __post_init__(self) -> None:
        # The emails link to the web pages: one source for that address, [web] public_url.
        url = self.web.public_url.rstrip("/")
        if url and not url.lower().startswith(("http://", "https://")):
            raise ConfigError(f"setting web.public_url must be an https:// or http:// URL: {url}")
        if self.smtp.web_url != url:
            object.__setattr__(self, "smtp", dataclasses.replace(self.smtp, web_url=url))

    @property
    def paths(self) -> DataPaths:
        return DataPaths(self.data_dir)


@dataclass(frozen=True)
class DataPaths:
    """Where everything lives under the one data directory."""

    root: Path

    @property
    def tenants(self) -> Path:
        return self.root / "tenants"

    def tenant_root(self, tenant: str) -> Path:
        return self.tenants / tenant

    def upload_dir(self, tenant: str) -> Path:
        return self.tenants / tenant / "upload"

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    @property
    def web_uploads(self) -> Path:
        """Files uploaded in the browser, checked and waiting for Process Import."""
        return self.root / "web-uploads"

    def web_upload_files(self, tenant: str) -> Path:
        """The tenant's one pending browser upload: its five files, as the drop folder's."""
        return self.web_uploads / tenant / "files"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def host_keys(self) -> Path:
        return self.root / "hostkeys"

    @property
    def locks(self) -> Path:
        return self.root / "locks"
