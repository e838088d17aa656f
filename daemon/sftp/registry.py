"""What all connections of one server share: settings, accounts, tenants, throttle, events."""

from __future__ import annotations

import asyncio

import structlog
from asyncssh import SSHServerConnection

from daemon.config import SftpSettings
from daemon.sftp.accounts import Account, AccountDirectory
from daemon.sftp.credentials import verify_password
from daemon.sftp.events import EventSink, UploadEvent
from daemon.sftp.tenants import Tenant
from daemon.sftp.throttle import LiftWatcher, LoginGuard, ThrottlePolicy

log = structlog.get_logger(__name__)

# argon2 is made to be slow and memory-hungry: a login flood must queue for it rather than take
# every worker thread (file I/O uses them too).
MAX_CONCURRENT_VERIFIES = 2


class Registry:
    """Lives as long as the SftpServer; touched only on the event loop thread."""

    def __init__(
        self, settings: SftpSettings, accounts: AccountDirectory, on_event: EventSink | None
    ) -> None:
        self.settings = settings
        self.throttle = LoginGuard(ThrottlePolicy.from_settings(settings))
        self.lifts = LiftWatcher(self.throttle, accounts.lifts_after)
        self.connections: set[SSHServerConnection] = set()
        self.no_connections = asyncio.Event()
        self.no_connections.set()
        self.handler_tasks: set[asyncio.Task[None]] = set()
        self._accounts = accounts
        self._on_event = on_event
        self._tenants: dict[str, Tenant] = {}
        self._verify_slots = asyncio.Semaphore(MAX_CONCURRENT_VERIFIES)

    def add_connection(self, conn: SSHServerConnection) -> None:
        self.connections.add(conn)
        self.no_connections.clear()

    def remove_connection(self, conn: SSHServerConnection) -> None:
        self.connections.discard(conn)
        if not self.connections:
            self.no_connections.set()

    def tenant(self, name: str) -> Tenant:
        tenant = self._tenants.get(name)
        if tenant is None:
            tenant = self._tenants[name] = Tenant(name, self.settings.tenant_quota_bytes)
        return tenant

    def active_uploads(self, name: str) -> int:
        tenant = self._tenants.get(name)
        return tenant.uploads if tenant else 0

    def session_count(self) -> int:
        return sum(tenant.sessions for tenant in self._tenants.values())

    async def lookup(self, username: str) -> Account | None:
        return await asyncio.to_thread(self._accounts.lookup, username)

    async def verify(self, password_hash: str, password: str) -> bool:
        async with self._verify_slots:
            return await asyncio.to_thread(verify_password, password_hash, password)

    def emit(self, event: UploadEvent) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:
            # A broken listener must not break the upload that is being reported.
            log.exception("sftp.event.listener_failed", tenant=event.tenant, kind=event.kind)
