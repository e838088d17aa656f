"""Tenants: one district each, its SFTP credentials, notification addresses and import settings."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from daemon.errors import ConfigError, Conflict, NotFound
from daemon.roster.tenant import TenantSettings
from daemon.store.tables import login_lifts, tenants

# The name is the SFTP user name and a directory name: keep it plain.
NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")


@dataclass(frozen=True)
class Tenant:
    id: int
    name: str
    created_at: datetime
    disabled: bool
    emails: tuple[str, ...]
    settings: TenantSettings
    password_hash: str | None = field(default=None, repr=False)
    authorized_keys: str = field(default="", repr=False)
    allow_from: tuple[str, ...] = ()  # CIDR networks it may log in from; empty: anywhere


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise ConfigError(
            f"tenant name {name!r} must be 1-63 lower-case letters, digits, '.', '_' or '-',"
            " starting with a letter or digit"
        )
    return name


def _tenant(row: RowMapping) -> Tenant:
    return Tenant(
        id=row["id"],
        name=row["name"],
        created_at=row["created_at"],
        disabled=row["disabled"],
        emails=tuple(row["emails"]),
        settings=TenantSettings.from_dict(row["settings"]),
        password_hash=row["password_hash"],
        authorized_keys=row["authorized_keys"] or "",
        allow_from=tuple(row["allow_from"] or ()),
    )


def add(
    conn: Connection,
    name: str,
    *,
    emails: Sequence[str],
    now: datetime,
    password_hash: str | None = None,
    settings: TenantSettings | None = None,
) -> Tenant:
    check_name(name)
    if find(conn, name) is not None:
        raise Conflict(f"tenant {name!r} already exists")
    conn.execute(
        tenants.insert().values(
            name=name,
            created_at=now,
            disabled=False,
            password_hash=password_hash,
            authorized_keys="",
            emails=list(emails),
            settings=(settings or TenantSettings()).as_dict(),
        )
    )
    return get(conn, name)


def find(conn: Connection, name: str) -> Tenant | None:
    row = conn.execute(sa.select(tenants).where(tenants.c.name == name)).mappings().first()
    return _tenant(row) if row else None


def get(conn: Connection, name: str) -> Tenant:
    tenant = find(conn, name)
    if tenant is None:
        raise NotFound(f"no tenant named {name!r} (see `rosterdrop tenant list`)")
    return tenant


def by_id(conn: Connection, tenant_id: int) -> Tenant:
    row = conn.execute(sa.select(tenants).where(tenants.c.id == tenant_id)).mappings().first()
    if row is None:
        raise NotFound(f"no tenant with id {tenant_id}")
    return _tenant(row)


def list_all(conn: Connection) -> list[Tenant]:
    rows = conn.execute(sa.select(tenants).order_by(tenants.c.name)).mappings()
    return [_tenant(row) for row in rows]


def by_ids(conn: Connection, ids: Collection[int]) -> list[Tenant]:
    if not ids:
        return []
    rows = conn.execute(sa.select(tenants).where(tenants.c.id.in_(list(ids)))).mappings()
    return [_tenant(row) for row in rows]


def page(conn: Connection, *, limit: int, after: str | None = None) -> list[Tenant]:
    """Tenants by name, one page (keyset: names after `after`)."""
    query = sa.select(tenants).order_by(tenants.c.name).limit(limit)
    if after:
        query = query.where(tenants.c.name > after)
    return [_tenant(row) for row in conn.execute(query).mappings()]


def update(conn: Connection, name: str, **values: Any) -> Tenant:
    """Change columns of a tenant: settings (a TenantSettings), emails, password_hash, …"""
    tenant = get(conn, name)
    if isinstance(values.get("settings"), TenantSettings):
        values["settings"] = values["settings"].as_dict()
    if "emails" in values:
        values["emails"] = list(values["emails"])
    if "allow_from" in values:
        values["allow_from"] = list(values["allow_from"])
    conn.execute(tenants.update().where(tenants.c.id == tenant.id).values(**values))
    return get(conn, name)


def lift_bans(conn: Connection, subjects: Sequence[str], *, now: datetime, by: str) -> None:
    """Ask every running daemon to lift these login bans (`user:NAME`, `address:ADDR`)."""
    conn.execute(
        login_lifts.insert(),
        [{"subject": s, "created_at": now, "created_by": by} for s in subjects],
    )


def lifts_after(conn: Connection, cursor: int | None) -> tuple[int, list[str]]:
    """The ban lifts recorded after `cursor`, and the new cursor (None: only the cursor)."""
    if cursor is None:
        newest = conn.execute(sa.select(sa.func.max(login_lifts.c.id))).scalar()
        return int(newest or 0), []
    rows = conn.execute(
        sa.select(login_lifts.c.id, login_lifts.c.subject)
        .where(login_lifts.c.id > cursor)
        .order_by(login_lifts.c.id)
    ).all()
    return (rows[-1].id if rows else cursor), [row.subject for row in rows]
