"""The checks: sets dropped in /check, each with its dry run's answer; never imports."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from daemon.errors import NotFound
from daemon.store import nodes as cluster
from daemon.store.tables import check_options, checks, nodes, tenants


class CheckState(StrEnum):
    RECEIVED = "received"  # claimed into the spool; its answer not written yet
    CHECKED = "checked"  # the answer is in /check/results
    FAILED = "failed"  # the check could not run to its end (the answer says why)

    @property
    def ended(self) -> bool:
        return self is not CheckState.RECEIVED


@dataclass(frozen=True)
class CheckRecord:
    id: int
    tenant_id: int
    tenant: str
    state: CheckState
    received_at: datetime
    finished_at: datetime | None = None
    files_dir: str | None = None
    archived_at: datetime | None = None
    files: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    results_name: str | None = None
    error: str | None = None
    attempts: int = 0
    node_id: int | None = None


_COLUMNS = [c for c in checks.c if c.name != "tenant_id"]


def _select() -> sa.Select[Any]:
    return sa.select(*_COLUMNS, checks.c.tenant_id, tenants.c.name.label("tenant")).join(
        tenants, tenants.c.id == checks.c.tenant_id
    )


def _record(row: RowMapping) -> CheckRecord:
    data = dict(row)
    data["state"] = CheckState(data["state"])
    return CheckRecord(**data)


def create(
    conn: Connection,
    tenant_id: int,
    *,
    files: dict[str, Any],
    now: datetime,
    node_id: int | None = None,
) -> int:
    result = conn.execute(
        checks.insert().values(
            tenant_id=tenant_id,
            state=str(CheckState.RECEIVED),
            received_at=now,
            files=files,
            node_id=node_id,
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def get(conn: Connection, check_id: int) -> CheckRecord:
    row = conn.execute(_select().where(checks.c.id == check_id)).mappings().first()
    if row is None:
        raise NotFound(f"no check #{check_id} (see `rosterdrop checks list`)")
    return _record(row)


def update(conn: Connection, check_id: int, **values: Any) -> None:
    if "state" in values:
        values["state"] = str(values["state"])
    conn.execute(checks.update().where(checks.c.id == check_id).values(**values))


def delete(conn: Connection, check_id: int) -> None:
    conn.execute(checks.delete().where(checks.c.id == check_id))


def list_recent(
    conn: Connection, *, tenant_id: int | None = None, limit: int = 50, before: int | None = None
) -> list[CheckRecord]:
    """Newest first; `before`: only checks older than that id (keyset paging)."""
    query = _select().order_by(checks.c.id.desc()).limit(limit)
    if tenant_id is not None:
        query = query.where(checks.c.tenant_id == tenant_id)
    if before is not None:
        query = query.where(checks.c.id < before)
    return [_record(row) for row in conn.execute(query).mappings()]


def _unarchived() -> sa.ColumnElement[bool]:
    """Not done with: running, or ended with its files still in the spool (and the originals
    still in /check: they are removed at the archiving)."""
    return sa.and_(checks.c.archived_at.is_(None), checks.c.files_dir.is_not(None))


def _owned(query: sa.Select[Any], ids: list[int] | None) -> sa.Select[Any]:
    return query if ids is None else query.where(checks.c.id.in_(ids))


def pending(conn: Connection, ids: list[int] | None = None) -> list[CheckRecord]:
    """Checks a restart must carry on with (claimed or not), oldest first; `ids`: only those."""
    query = _owned(_select().where(checks.c.state == str(CheckState.RECEIVED)), ids)
    return [_record(row) for row in conn.execute(query.order_by(checks.c.id)).mappings()]


def unarchived(conn: Connection, ids: list[int] | None = None) -> list[CheckRecord]:
    """Ended checks whose files are still in the spool; `ids`: only those."""
    query = _owned(_select().where(checks.c.state != str(CheckState.RECEIVED), _unarchived()), ids)
    return [_record(row) for row in conn.execute(query.order_by(checks.c.id)).mappings()]


def unfinished(conn: Connection, tenant: str) -> int:
    """A tenant's checks, on any node, whose files are still in its /check (their set is
    not to be claimed again)."""
    query = (
        sa.select(sa.func.count())
        .select_from(checks.join(tenants, tenants.c.id == checks.c.tenant_id))
        .where(tenants.c.name == tenant, _unarchived())
    )
    return int(conn.execute(query).scalar_one())


def take_over(conn: Connection, node_id: int) -> list[int]:
    """Make this node the owner of the checks not done with whose node is dead or gone (as
    `nodes.take_over` does for imports), and of those no node owns; returns their ids."""
    cluster.xact_lock(conn, cluster.OWNERSHIP_KEY)
    dead = sa.select(nodes.c.id).where(nodes.c.lease_until <= cluster.db_now(conn))
    gone = ~sa.exists().where(nodes.c.id == checks.c.node_id)
    orphan = sa.or_(checks.c.node_id.is_(None), checks.c.node_id.in_(dead), gone)
    where = sa.and_(_unarchived(), orphan, checks.c.node_id.is_distinct_from(node_id))
    ids = [int(i) for i in conn.execute(sa.select(checks.c.id).where(where)).scalars()]
    if ids:
        conn.execute(checks.update().where(checks.c.id.in_(ids)).values(node_id=node_id))
    return sorted(ids)


def expired(conn: Connection, before: datetime) -> list[CheckRecord]:
    """Archived checks whose files are past the retention period."""
    query = _select().where(checks.c.archived_at < before, checks.c.files_dir.is_not(None))
    return [_record(row) for row in conn.execute(query.order_by(checks.c.id)).mappings()]


def emails_results(conn: Connection, tenant_id: int) -> bool:
    """Whether the tenant wants each check's answer by email too."""
    query = sa.select(check_options.c.email_results).where(check_options.c.tenant_id == tenant_id)
    return bool(conn.execute(query).scalar())


def set_email_results(conn: Connection, tenant_id: int, on: bool) -> None:
    conn.execute(check_options.delete().where(check_options.c.tenant_id == tenant_id))
    conn.execute(check_options.insert().values(tenant_id=tenant_id, email_results=on))
