"""The node registry: the daemons sharing one database, their leases, and whose imports are whose.

Times are the database's (`now()` on PostgreSQL), never a node's own clock: two machines'
clocks may differ by more than a lease. A node is live while `lease_until` is ahead of that
time; its imports are its alone. A dead node's unfinished imports are taken over, all of
them by one node, so that a tenant's imports stay together and run in upload order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from daemon.roster.outcome import ENDED, RESUMABLE
from daemon.store.tables import imports, nodes, tenants

# The advisory locks of the cluster's decisions, apart from the tenant import locks
# (database._ADVISORY_LOCK_CLASS): key 0 serialises who owns which import; a tenant's id,
# the claim of its upload folder's set; key -1, the stuck-set reports (stale-reports.json).
CLAIM_LOCK_CLASS = 0x524F5343  # "ROSC"
OWNERSHIP_KEY = 0
REPORTS_KEY = -1
# A dead node's row stays this long for `cluster status`, then goes.
FORGET_DEAD_AFTER = timedelta(days=1)

_UNFINISHED = [str(state) for state in RESUMABLE]
_ENDED = [str(state) for state in ENDED]


@dataclass(frozen=True)
class Node:
    id: int
    name: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    lease_until: datetime
    stopped_at: datetime | None
    sftp_port: int | None
    http_port: int | None
    workers: int
    live: bool
    running: tuple[int, ...] = ()  # its unfinished imports, oldest first


def db_now(conn: Connection) -> datetime:
    """The database's time: the one clock every node agrees on."""
    if conn.dialect.name == "postgresql":
        value: datetime = conn.execute(sa.text("SELECT clock_timestamp()")).scalar_one()
        return value.astimezone(UTC)
    return datetime.now(UTC)  # SQLite: one machine, one clock


def xact_lock(conn: Connection, key: int, *, wait: bool = True) -> bool:
    """A transaction-scoped advisory lock (released at commit or rollback, so PgBouncer in
    transaction mode keeps it); True when held. SQLite: one node, nothing to lock."""
    if conn.dialect.name != "postgresql":
        return True
    function = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    taken = conn.execute(
        sa.text(f"SELECT {function}(:c, :k)"), {"c": CLAIM_LOCK_CLASS, "k": key}
    ).scalar()
    return taken is not False


def register(
    conn: Connection, *, name: str, host: str, pid: int, workers: int, lease_seconds: float
) -> int:
    now = db_now(conn)
    conn.execute(
        nodes.delete().where(
            nodes.c.lease_until < now - FORGET_DEAD_AFTER,
            ~sa.exists().where(imports.c.node_id == nodes.c.id, imports.c.state.not_in(_ENDED)),
        )
    )
    result = conn.execute(
        nodes.insert().values(
            name=name, host=host, pid=pid, workers=workers, started_at=now, heartbeat_at=now,
            lease_until=now + timedelta(seconds=lease_seconds),
        )
    )  # fmt: skip
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def heartbeat(
    conn: Connection,
    node_id: int,
    lease_seconds: float,
    *,
    sftp_port: int | None = None,
    http_port: int | None = None,
) -> bool:
    """Renew the node's lease; False when it had already run out (others may have taken its
    imports over: the tenant locks keep any import from running twice at once)."""
    now = db_now(conn)
    row = conn.execute(
        sa.select(nodes.c.lease_until).where(nodes.c.id == node_id)
    ).scalar_one_or_none()
    values: dict[str, object] = {
        "heartbeat_at": now,
        "lease_until": now + timedelta(seconds=lease_seconds),
    }
    if sftp_port is not None:
        values.update(sftp_port=sftp_port, http_port=http_port)
    conn.execute(nodes.update().where(nodes.c.id == node_id).values(**values))
    return row is not None and _aware(row) >= now


def stop(conn: Connection, node_id: int) -> None:
    """A clean stop: the lease ends now, so the node's unfinished imports run elsewhere at once."""
    now = db_now(conn)
    conn.execute(
        nodes.update().where(nodes.c.id == node_id).values(lease_until=now, stopped_at=now)
    )


def is_live(conn: Connection, node_id: int | None) -> bool:
    if node_id is None:
        return False
    lease = conn.execute(
        sa.select(nodes.c.lease_until).where(nodes.c.id == node_id)
    ).scalar_one_or_none()
    return lease is not None and _aware(lease) > db_now(conn)


def live_others(conn: Connection, node_id: int) -> list[Node]:
    return [n for n in listing(conn) if n.live and n.id != node_id and n.stopped_at is None]


def take_over(conn: Connection, node_id: int, *, unowned: bool = False) -> list[int]:
    """Make this node the owner of every import of the dead nodes that is not done with (not
    ended, or ended with its files not yet archived); `unowned`: also those no node owns
    (a command's, or from before the cluster). Returns their ids, oldest first."""
    xact_lock(conn, OWNERSHIP_KEY)
    now = db_now(conn)
    dead = sa.select(nodes.c.id).where(nodes.c.lease_until <= now)
    gone = ~sa.exists().where(nodes.c.id == imports.c.node_id)
    owner = sa.or_(imports.c.node_id.in_(dead), sa.and_(imports.c.node_id.is_not(None), gone))
    if unowned:
        owner = sa.or_(owner, imports.c.node_id.is_(None))
    not_done = sa.or_(
        imports.c.state.not_in(_ENDED),
        sa.and_(imports.c.archived_at.is_(None), imports.c.files_dir.is_not(None)),
    )
    ids = [
        int(i)
        for i in conn.execute(
            sa.select(imports.c.id).where(owner, not_done).order_by(imports.c.id)
        ).scalars()
    ]
    if ids:
        conn.execute(imports.update().where(imports.c.id.in_(ids)).values(node_id=node_id))
    return ids


def adopt(conn: Connection, import_id: int, tenant_id: int, node_id: int) -> int:
    """The node a just-claimed import belongs to: the owner of its tenant's older unfinished
    imports if it has any (so one node runs them all, in upload order), else this one."""
    xact_lock(conn, OWNERSHIP_KEY)
    owner = conn.execute(
        sa.select(imports.c.node_id)
        .where(
            imports.c.tenant_id == tenant_id,
            imports.c.id < import_id,
            imports.c.state.in_(_UNFINISHED),
            imports.c.node_id.is_not(None),
        )
        .order_by(imports.c.id)
        .limit(1)
    ).scalar_one_or_none()
    chosen = int(owner) if owner is not None else node_id
    if chosen != node_id:
        conn.execute(imports.update().where(imports.c.id == import_id).values(node_id=chosen))
    return chosen


def owned(conn: Connection, node_id: int) -> list[tuple[str, int]]:
    """This node's imports to run, as (tenant, import id), oldest first."""
    query = (
        sa.select(tenants.c.name, imports.c.id)
        .join(tenants, tenants.c.id == imports.c.tenant_id)
        .where(imports.c.node_id == node_id, imports.c.state.in_(_UNFINISHED))
        .order_by(imports.c.id)
    )
    return [(str(name), int(i)) for name, i in conn.execute(query)]


def listing(conn: Connection) -> list[Node]:
    """Every node the registry remembers, newest first, with its unfinished imports."""
    now = db_now(conn)
    running: dict[int, list[int]] = {}
    for owner, import_id in conn.execute(
        sa.select(imports.c.node_id, imports.c.id)
        .where(imports.c.state.in_(_UNFINISHED), imports.c.node_id.is_not(None))
        .order_by(imports.c.id)
    ):
        running.setdefault(int(owner), []).append(int(import_id))
    rows = conn.execute(sa.select(nodes).order_by(nodes.c.id.desc())).mappings()
    return [
        Node(
            **{k: row[k] for k in _FIELDS},
            lease_until=_aware(row["lease_until"]),
            live=_aware(row["lease_until"]) > now,
            running=tuple(running.get(int(row["id"]), ())),
        )
        for row in rows
    ]


_FIELDS: Sequence[str] = (
    "id", "name", "host", "pid", "started_at", "heartbeat_at", "stopped_at", "sftp_port",
    "http_port", "workers",
)  # fmt: skip


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
