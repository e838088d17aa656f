"""Failed SFTP logins shared by a cluster's nodes: one count and one ban, whichever node a
guess reaches.

Each node keeps its in-memory LoginGuard (the fast path: a banned source is refused without
a query) and publishes every failure it counts into `login_failures`; every SHARE_SECONDS it
reads the other nodes' and counts them as if they had reached it. All nodes see the same
failures, so each bans a source when the cluster's count reaches [sftp] max_auth_failures,
and an attacker spreading guesses over the nodes gains nothing. A node that starts replays
the recent failures (since the last `tenant unban`), so a running ban holds on it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import structlog

from daemon.config import SftpSettings
from daemon.errors import RosterdropError
from daemon.sftp.throttle import LoginGuard
from daemon.store.database import Database
from daemon.store.tables import login_failures, login_lifts

log = structlog.get_logger(__name__)

# How often a node reads the other nodes' failures: a ban earned elsewhere holds here this
# long after, at most (a node publishes its own at once).
SHARE_SECONDS = 0.5
# The most failures one read brings in (a flood is read over several beats, never unbounded).
MAX_READ = 5_000
# Failures older than this (beyond every window and ban) are deleted, this often.
PURGE_EVERY_SECONDS = 300.0


@dataclass(frozen=True)
class _Failure:
    source: str
    username: str
    count_user: bool
    at: datetime


class LoginSharing:
    """Publishes this node's failed logins and counts the other nodes' (on the event loop;
    the database work runs in threads)."""

    def __init__(
        self, db: Database, guard: LoginGuard, node_id: int, settings: SftpSettings
    ) -> None:
        self.db = db
        self.guard = guard
        self.node_id = node_id
        # Everything a ban or a count may still depend on.
        self.memory = timedelta(seconds=settings.auth_failure_window + settings.max_ban_seconds)
        self._outgoing: list[_Failure] = []
        self._cursor = 0
        self._wake = asyncio.Event()
        self._purged = 0.0

    def publish(self, source: str, username: str, count_user: bool) -> None:
        self._outgoing.append(_Failure(source, username[:128], count_user, datetime.now(UTC)))
        self._wake.set()

    async def run(self) -> None:
        self.guard.publish = self.publish
        await self._beat(replay=True)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), SHARE_SECONDS)
            self._wake.clear()
            await self._beat(replay=False)

    async def _beat(self, *, replay: bool) -> None:
        outgoing, self._outgoing = self._outgoing, []
        try:
            incoming = await asyncio.to_thread(self._exchange, outgoing, replay)
        except RosterdropError as exc:
            # The database is away: keep ours for the next beat; the local counts still hold.
            self._outgoing[:0] = outgoing
            log.error("sftp.login.sharing_failed", error=str(exc))
            return
        wall, mono = datetime.now(UTC), time.monotonic()
        for failure in incoming:
            at = mono - max(0.0, (wall - failure.at).total_seconds())
            seconds = self.guard.failed(
                failure.source, failure.username, count_user=failure.count_user, at=at
            )
            if seconds is not None:
                log.warning(
                    "sftp.login.banned",
                    peer=failure.source,
                    user=failure.username,
                    seconds=seconds,
                    counted_by="cluster",
                )

    def _exchange(self, outgoing: list[_Failure], replay: bool) -> list[_Failure]:
        now = datetime.now(UTC)
        with self.db.write() as conn:
            if outgoing:
                conn.execute(
                    login_failures.insert(),
                    [
                        {"node_id": self.node_id, "source": f.source, "username": f.username,
                         "count_user": f.count_user, "failed_at": f.at}
                        for f in outgoing
                    ],
                )  # fmt: skip
            if time.monotonic() - self._purged > PURGE_EVERY_SECONDS:
                self._purged = time.monotonic()
                conn.execute(
                    login_failures.delete().where(login_failures.c.failed_at < now - self.memory)
                )
            query = sa.select(login_failures).where(login_failures.c.node_id != self.node_id)
            if replay:
                # A lift the operator made is not undone by replaying what it lifted.
                lifted = conn.execute(sa.select(sa.func.max(login_lifts.c.created_at))).scalar()
                since = max(now - self.memory, lifted or now - self.memory)
                query = query.where(login_failures.c.failed_at > since)
            else:
                query = query.where(login_failures.c.id > self._cursor)
            rows = (
                conn.execute(query.order_by(login_failures.c.id).limit(MAX_READ)).mappings().all()
            )
            if replay and not rows:
                newest = conn.execute(sa.select(sa.func.max(login_failures.c.id))).scalar()
                self._cursor = int(newest or 0)
        if rows:
            self._cursor = max(self._cursor, int(rows[-1]["id"]))
        return [_Failure(r["source"], r["username"], r["count_user"], r["failed_at"]) for r in rows]
