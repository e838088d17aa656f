"""One client connection: login checks and throttling, the per-tenant session cap, idle timeout,
and the SFTP channels it may open."""

from __future__ import annotations

import asyncio
import time

import asyncssh
import structlog
from asyncssh import SSHAuthorizedKeys, SSHKey, SSHServerChannel, SSHServerConnection
from asyncssh.constants import DISC_BY_APPLICATION, DISC_TOO_MANY_CONNECTIONS

from daemon.metrics import SFTP_LOGINS, SFTP_SESSIONS
from daemon.sftp.accounts import Account
from daemon.sftp.credentials import dummy_hash
from daemon.sftp.jail import Jail
from daemon.sftp.registry import Registry
from daemon.sftp.session import SftpSession
from daemon.sftp.tenantfs import SessionContext, TenantSftp
from daemon.sftp.tenants import Tenant

log = structlog.get_logger(__name__)

MAX_CHANNELS_PER_CONNECTION = 10  # OpenSSH's MaxSessions default


class ClientConnection(asyncssh.SSHServer):
    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._conn: SSHServerConnection | None = None
        self._peer = "unknown"
        self._log = log
        self._username = ""
        self._account: Account | None = None  # only an enabled account that was found
        self._keys: SSHAuthorizedKeys | None = None
        self._method = ""
        self._key_rejections = 0
        self._password_failures = 0
        self._authenticated = False
        self._directory_failed = False  # the account lookup failed: not the client's fault
        self._outside = False  # the account exists but does not allow logins from this peer
        self._tenant: Tenant | None = None  # set once logged in and counted against the cap
        self._channels = 0
        self._last_activity = time.monotonic()
        self._idle_timer: asyncio.TimerHandle | None = None
        self._sessions: list[TenantSftp] = []

    # -- connection -----------------------------------------------------------------------

    def connection_made(self, conn: SSHServerConnection) -> None:
        self._conn = conn
        peer = conn.get_extra_info("peername")
        self._peer = str(peer[0]) if peer else "unknown"
        self._log = log.bind(peer=self._peer)
        # Counted until connection_lost, even when refused: a stop waits for every connection
        # asyncio accepted, including those it hands over after the listener closed.
        self._registry.add_connection(self)
        if self._registry.stopping:
            conn.abort()
            return
        if self._registry.throttle.source_banned(self._peer):
            # Before key exchange: a banned address costs us one accept and one close.
            self._registry.lifts.poke()
            SFTP_LOGINS.labels(result="throttled").inc()
            self._log.warning("sftp.login.throttled", reason="address banned")
            conn.abort()
            return

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        if self._conn is not None:
            self._registry.remove_connection(self)
        if self._tenant is not None:
            self._tenant.sessions -= 1
            SFTP_SESSIONS.dec()
            self._log.info("sftp.session.closed", reason=str(exc) if exc else "closed")
        elif self._key_rejections and not (self._password_failures or self._authenticated):
            # A login that offered only keys, none accepted: one failure for the whole attempt,
            # so that a client trying several keys before its password is not punished.
            self._record_failure("publickey")

    # -- authentication -------------------------------------------------------------------

    async def begin_auth(self, username: str) -> bool:
        self._username = username
        self._account = None
        self._keys = None
        self._directory_failed = False
        self._outside = False
        try:
            account = await self._registry.lookup(username)
        except Exception:
            self._log.exception("sftp.login.lookup_failed", user=username)
            self._directory_failed = True
            account = None
        if account is not None and not account.allows(self._peer):
            # Refused like a wrong password, and not counted against the district's username.
            self._log.warning("sftp.login.outside_allow_from", user=username)
            self._outside = True
            account = None
        if account is not None and not account.disabled:
            self._account = account
            self._keys = _parse_keys(account, self._log)
        return True  # authentication is always required: never "none"

    def password_auth_supported(self) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    async def validate_password(self, username: str, password: str) -> bool:
        self._refuse_if_banned()
        if not self._outside:
            await self._pace_password()
        account = self._account
        real_hash = account.password_hash if account is not None else None
        # Unknown, disabled and key-only accounts verify against a dummy hash: same answer, and
        # about the same time, as a wrong password.
        matched = await self._registry.verify(real_hash or dummy_hash(), password)
        if matched and real_hash:
            self._method = "password"
            return True
        self._password_failures += 1
        self._record_failure("password")
        return False

    async def validate_public_key(self, username: str, key: SSHKey) -> bool:
        self._refuse_if_banned()
        if self._keys is not None and self._keys.validate(key, self._peer, self._peer) is not None:
            self._method = "publickey"
            return True
        self._key_rejections += 1
        return False

    def auth_completed(self) -> None:
        assert self._conn is not None
        assert self._account is not None
        self._authenticated = True
        name = self._account.name
        tenant = self._registry.tenant(name)
        cap = self._registry.settings.max_sessions_per_tenant
        if tenant.sessions >= cap:
            SFTP_LOGINS.labels(result="throttled").inc()
            self._log.warning("sftp.login.session_cap", tenant=name, sessions=tenant.sessions)
            self._conn.disconnect(DISC_TOO_MANY_CONNECTIONS, f"too many sessions (at most {cap})")
            return
        tenant.sessions += 1
        self._tenant = tenant
        self._log = self._log.bind(tenant=name)
        SFTP_SESSIONS.inc()
        SFTP_LOGINS.labels(result="success").inc()
        self._log.info("sftp.login.succeeded", method=self._method)
        self.touch()
        self._check_idle()

    def _refuse_if_banned(self) -> None:
        if self._registry.throttle.source_banned(self._peer):
            SFTP_LOGINS.labels(result="throttled").inc()
            self._log.warning("sftp.login.throttled", user=self._username)
            raise asyncssh.PermissionDenied("too many failed logins, try again later")

    async def _pace_password(self) -> None:
        """Past its free failures, a username's password checks run one per user_delay (from
        every address together); one that would wait too long is refused unchecked."""
        wait = self._registry.throttle.password_check_wait(self._username)
        if wait == 0:
            return
        self._registry.lifts.poke()
        if wait is None:
            SFTP_LOGINS.labels(result="throttled").inc()
            self._log.warning("sftp.login.throttled", user=self._username, reason="user paced")
            self._count_failure(count_user=False)
            raise asyncssh.PermissionDenied("too many failed logins, try again later")
        self._log.info("sftp.login.paced", user=self._username, seconds=round(wait, 3))
        await asyncio.sleep(wait)

    def _record_failure(self, method: str) -> None:
        SFTP_LOGINS.labels(result="failure").inc()
        self._log.warning("sftp.login.failed", user=self._username, method=method)
        if self._directory_failed:
            return  # an outage of the account directory must not ban the districts retrying
        self._count_failure(count_user=method == "password" and not self._outside)

    def _count_failure(self, *, count_user: bool) -> None:
        seconds = self._registry.throttle.failed(self._peer, self._username, count_user=count_user)
        if seconds is not None:
            self._registry.lifts.watch()
            self._log.warning("sftp.login.banned", user=self._username, seconds=seconds)

    # -- channels -------------------------------------------------------------------------

    def session_requested(self) -> SftpSession | bool:
        if self._tenant is None or self._channels >= MAX_CHANNELS_PER_CONNECTION:
            return False
        self._channels += 1
        return SftpSession(self)

    def open_sftp(self, chan: SSHServerChannel[bytes]) -> TenantSftp:
        assert self._account is not None
        assert self._tenant is not None
        jail = Jail(self._account.root)
        try:
            jail.ensure_upload_dir()
        except OSError:
            self._log.exception("sftp.session.no_upload_dir", root=str(jail.root))
            raise
        registry = self._registry
        context = SessionContext(
            jail,
            self._tenant,
            registry.settings,
            registry.holdings(self._tenant.name),
            registry.emit,
            registry.upload_ended,
            lambda: registry.stopping,
            self._log,
        )
        server = TenantSftp(chan, context)
        self._sessions.append(server)
        return server

    def channel_closed(self, server: TenantSftp | None) -> None:
        self._channels -= 1
        if server in self._sessions:
            self._sessions.remove(server)

    # -- stopping -------------------------------------------------------------------------

    def busy(self) -> bool:
        return any(server.uploads_open for server in self._sessions)

    def hang_up(self, reason: str) -> None:
        if self._conn is not None:
            self._conn.disconnect(DISC_BY_APPLICATION, reason)

    def track(self, task: asyncio.Task[None]) -> None:
        self._registry.handler_tasks.add(task)
        task.add_done_callback(self._registry.handler_tasks.discard)

    def touch(self) -> None:
        self._last_activity = time.monotonic()

    def _check_idle(self) -> None:
        timeout = self._registry.settings.idle_timeout
        if timeout <= 0 or self._conn is None:
            return
        remaining = self._last_activity + timeout - time.monotonic()
        if remaining > 0:
            self._idle_timer = asyncio.get_running_loop().call_later(remaining, self._check_idle)
            return
        self._log.info("sftp.session.idle_timeout", seconds=timeout)
        self._conn.disconnect(DISC_BY_APPLICATION, "idle timeout")


def _parse_keys(account: Account, logger: structlog.stdlib.BoundLogger) -> SSHAuthorizedKeys | None:
    if not account.authorized_keys.strip():
        return None
    try:
        return asyncssh.import_authorized_keys(account.authorized_keys)
    except (asyncssh.KeyImportError, ValueError):
        logger.exception("sftp.login.bad_authorized_keys", tenant=account.name)
        return None
