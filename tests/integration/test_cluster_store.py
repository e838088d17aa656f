"""The node registry and the shared login failures, on both databases: who is dead, what a
takeover moves, how long a dead node is remembered, and how much one read of the failures
brings in (MAX_READ)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from daemon.cluster.logins import MAX_READ, LoginSharing
from daemon.config import Settings
from daemon.roster.outcome import ImportState
from daemon.sftp.throttle import LoginGuard, ThrottlePolicy
from daemon.store import imports, nodes, tenants
from daemon.store.database import Database
from daemon.store.tables import login_failures
from daemon.store.tables import nodes as nodes_table


def node(db: Database, name: str, lease: float = 10.0) -> int:
    with db.write() as conn:
        return nodes.register(conn, name=name, host="h", pid=1, workers=2, lease_seconds=lease)


def expire(db: Database, node_id: int, ago: timedelta) -> None:
    with db.write() as conn:
        until = nodes.db_now(conn) - ago
        conn.execute(
            nodes_table.update().where(nodes_table.c.id == node_id).values(lease_until=until)
        )


def an_import(db: Database, tenant_id: int, owner: int | None) -> int:
    with db.write() as conn:
        return imports.create(
            conn, tenant_id, source="sftp", files={}, now=datetime.now(UTC), node_id=owner
        )


def test_a_takeover_moves_a_dead_nodes_imports_and_leaves_a_live_ones(db: Database) -> None:
    with db.write() as conn:
        tenant = tenants.add(conn, "acme", emails=[], now=datetime.now(UTC))
    live, dead, me = node(db, "live"), node(db, "dead"), node(db, "me")
    expire(db, dead, timedelta(seconds=1))
    of_live, of_dead, unowned = (
        an_import(db, tenant.id, live),
        an_import(db, tenant.id, dead),
        an_import(db, tenant.id, None),
    )
    with db.write() as conn:
        assert nodes.take_over(conn, me) == [of_dead]
        assert nodes.take_over(conn, me, unowned=True) == [unowned]
        assert nodes.owned(conn, me) == [("acme", of_dead), ("acme", unowned)]
        assert nodes.owned(conn, live) == [("acme", of_live)]
        # A newer upload of the tenant goes to the node owning its older unfinished imports.
        newer = imports.create(
            conn, tenant.id, source="sftp", files={}, now=datetime.now(UTC), node_id=live
        )
    with db.write() as conn:
        assert nodes.adopt(conn, newer, tenant.id, live) == live  # of_live is older, live's
        imports.update(conn, of_live, datetime.now(UTC), state=ImportState.IMPORTED)
    with db.write() as conn:
        # of_live ended: the oldest unfinished one is of_dead, now mine.
        assert nodes.adopt(conn, newer, tenant.id, live) == me
        assert [n.name for n in nodes.listing(conn) if n.live] == ["me", "live"]


def test_a_dead_node_is_forgotten_a_day_after_its_lease_unless_it_owns_unfinished_imports(
    db: Database,
) -> None:
    with db.write() as conn:
        tenant = tenants.add(conn, "acme", emails=[], now=datetime.now(UTC))
    old, recent, busy = node(db, "old"), node(db, "recent"), node(db, "busy")
    expire(db, old, nodes.FORGET_DEAD_AFTER + timedelta(seconds=1))
    expire(db, recent, nodes.FORGET_DEAD_AFTER - timedelta(minutes=1))
    expire(db, busy, nodes.FORGET_DEAD_AFTER + timedelta(seconds=1))
    an_import(db, tenant.id, busy)
    node(db, "new")  # a node's start clears the registry
    with db.read() as conn:
        assert sorted(n.name for n in nodes.listing(conn)) == ["busy", "new", "recent"]


def test_one_read_of_the_other_nodes_failures_brings_in_at_most_max_read(
    db: Database, settings: Settings
) -> None:
    me, other = node(db, "me"), node(db, "other")
    now = datetime.now(UTC)
    with db.write() as conn:
        conn.execute(sa.text("SELECT 1"))
        # A ban's worth from one address, then a flood from many, all through the other node.
        rows = [
            {"node_id": other, "source": f"10.0.{n // 250}.{n % 250}", "username": "acme",
             "count_user": True, "failed_at": now}
            for n in range(MAX_READ + 1)
        ]  # fmt: skip
        conn.execute(login_failures.insert(), rows)
    guard = LoginGuard(ThrottlePolicy.from_settings(settings.sftp))
    sharing = LoginSharing(db, guard, me, settings.sftp)
    assert len(sharing._exchange([], replay=True)) == MAX_READ
    assert len(sharing._exchange([], replay=False)) == 1
    assert sharing._exchange([], replay=False) == []


async def test_failures_published_here_are_not_read_back_and_others_ban_here(
    db: Database, settings: Settings
) -> None:
    me, other = node(db, "me"), node(db, "other")
    guard = LoginGuard(ThrottlePolicy.from_settings(settings.sftp))
    sharing = LoginSharing(db, guard, me, settings.sftp)
    task = asyncio.create_task(sharing.run())
    try:
        await asyncio.sleep(0.1)
        guard.failed("192.0.2.1", "acme", count_user=True)  # counted here, published
        with db.write() as conn:
            conn.execute(
                login_failures.insert(),
                [{"node_id": other, "source": "192.0.2.9", "username": "x", "count_user": False,
                  "failed_at": datetime.now(UTC)}] * settings.sftp.max_auth_failures,
            )  # fmt: skip
        for _ in range(100):
            if guard.source_banned("192.0.2.9"):
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
    assert guard.source_banned("192.0.2.9")
    assert not guard.source_banned("192.0.2.1")  # one failure, counted once
    with db.read() as conn:
        mine = conn.execute(
            sa.select(login_failures.c.source).where(login_failures.c.node_id == me)
        )
        assert [r.source for r in mine] == ["192.0.2.1"]
