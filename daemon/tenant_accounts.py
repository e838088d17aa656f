"""The SFTP server's accounts: the tenants table, as `SftpServer` looks a login up."""

from __future__ import annotations

from daemon.config import Settings
from daemon.sftp import Account
from daemon.sftp.accounts import parse_networks
from daemon.store import tenants
from daemon.store.database import Database


class TenantAccounts:
    """The SFTP server's view of the tenants table (called off the event loop)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.paths = settings.paths

    def lookup(self, username: str) -> Account | None:
        with self.db.read() as conn:
            tenant = tenants.find(conn, username)
        if tenant is None:
            return None
        return Account(
            name=tenant.name,
            root=self.paths.tenant_root(tenant.name),
            password_hash=tenant.password_hash,
            authorized_keys=tenant.authorized_keys,
            disabled=tenant.disabled,
            allow_from=parse_networks(",".join(tenant.allow_from)),
        )

    def lifts_after(self, cursor: int | None) -> tuple[int, list[str]]:
        with self.db.read() as conn:
            return tenants.lifts_after(conn, cursor)
