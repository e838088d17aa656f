"""What all connections of one server share: settings, accounts, tenants, throttle, admission,
events, and whether the server is stopping."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import structlog

from daemon.config import SftpSettings
from daemon.sftp.accounts import Account, AccountDirectory
from daemon.sftp.admission import Admission
from daemon.sftp.credentials import verify_password
from daemon.sftp.events import EventSink, UploadEvent
from daemon.sftp.tenants import Tenant
from daemon.sftp.throttle import LiftWatcher, LoginGuard, ThrottlePolicy

log = structlog.get_logger(__name__)

# argon2 is made to be slow and memory-hungry: a login flood must queue for it rather than take
# every worker thread (file I/O uses them too).
MAX_CONCURRENT_VERIFIES = 2

# Where else a tenant's files are kept (its import folders in the spool and the archive).
Holdings = Callable[[str], Sequence[Path]]


class Client(Protocol):
    """A connection as the server's stop sees it."""

    def busy(self) -> bool:
        """An upload is open on it: a stop waits for it."""
        ...

    def hang_up(self, reason: str) -> None: ...


class Registry:
    """Lives as long as the SftpServer; touched only on the event loop thread."""

    def __init__(
        self,
        settings: SftpSettings,
        accounts: AccountDirectory,
        on_event: EventSink | None,
        holdings: Holdings | None = None,
    ) -> None:
        self.settings = settings
        self.admission = Admission(settings)
        self.holdings: Holdings = holdings or (lambda name: ())
        self.stopping = False
        self.no_uploads = asyncio.Event()  # set by a stop once no upload is open anywhere
        self.throttle = LoginGuard(ThrottlePolicy.from_settings(settings))
        self.lifts = LiftWatcher(self.throttle, accounts.lifts_after)
        self.connections: set[Client] = set()
        self.no_connections = asyncio.Event()
        self.no_connections.set()
        self.handler_tasks: set[asyncio.Task[None]] = set()
        self._accounts = accounts
        self._on_event = on_event
        self._tenants: dict[str, Tenant] = {}
        self._verify_slots = asyncio.Semaphore(MAX_CONCURRENT_VERIFIES)

    def add_connection(self, client: Client) -> None:
        self.connections.add(client)
        self.no_connections.clear()

    def remove_connection(self, client: Client) -> None:
        self.connections.discard(client)
        if not self.connections:
            self.no_connections.set()
        self.upload_ended()

    def upload_ended(self) -> None:
        """An upload was published or discarded, or a connection went: while stopping, tell the
        stop when none is left."""
        if self.stopping and not any(client.busy() for client in self.connections):
            self.no_uploads.set()

    def tenant(self, name: str) -> Tenant:
        tenant = self._tenants.get(name)
        if tenant is None:
            tenant = self._tenants[name] = Tenant(name, self.settings.tenant_quota_bytes)
        return tenant

    def active_uploads(self, name: str, folder: str | None = None) -> int:
        """The tenant's uploads open now, in one drop folder (`upload`, `check`) or all."""
        tenant = self._tenants.get(name)
        if tenant is None:
            return 0
        return tenant.uploads if folder is None else tenant.uploads_in[folder]

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
