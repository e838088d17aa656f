"""The school year's turns, run by `serve` as a periodic task (and once at its start, for the
windows that ended while it was down): the pause window notices, and releasing the newest
upload a window held once no window holds its tenant any more.

Exactly once, across restarts and nodes sharing one database, by the database alone: a
notice is claimed by its key (tenant, window, kind) in the transaction that queues it in
the outbox; a release is the update of a still-paused import, which one caller wins.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy.engine import Connection

from daemon.config import Settings
from daemon.errors import ConfigError, RosterdropError
from daemon.intake import utc_now
from daemon.notify.windows import window_notice
from daemon.pipeline import Pipeline
from daemon.roster import windows as rules
from daemon.roster.windows import ENDED, STARTS, PauseWindow
from daemon.store import outbox, tenants, windows
from daemon.store.database import Database
from daemon.windowclock import window_now

log = structlog.get_logger(__name__)

YEARLY_BY = "rosterdrop (yearly window)"  # who adds a yearly window's next year


@dataclass(frozen=True)
class Released:
    tenant: str
    tenant_id: int
    import_id: int
    superseded: int  # older held uploads that make way for it


class Rollover:
    def __init__(
        self,
        db: Database,
        pipeline: Pipeline,
        settings: Settings,
        submit: Callable[[str, int], None],
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.db = db
        self.pipeline = pipeline
        self.smtp = settings.smtp
        self.windows = settings.windows
        self.submit = submit
        self.clock = clock  # the outbox's and the records' time; windows use window_now

    async def run(self) -> None:
        first = True
        while True:
            try:
                released = await self.turn()
                if first:  # what a restart caught up on (later looks are quiet)
                    log.info("pause windows looked at after the start", released=len(released))
                first = False
            except RosterdropError as exc:  # the database is away: the next look catches up
                log.error("could not look at the pause windows", error=str(exc))
            await asyncio.sleep(self.windows.check_seconds)

    async def turn(self) -> list[Released]:
        """One look: release what windows held, send the notices due, start the imports."""
        released = await asyncio.to_thread(self.tick)
        for one in released:
            self.submit(one.tenant, one.import_id)
        self.pipeline.mail_queued()
        return released

    def tick(self) -> list[Released]:
        now = window_now(self.clock)
        with self.db.read() as conn:
            watched = windows.watched(conn, now)
            held = windows.held_imports(conn)
        released = [
            one
            for tenant_id, import_ids in held.items()
            if (one := self._release(tenant_id, import_ids, watched, now)) is not None
        ]
        by_tenant = {one.tenant_id: one for one in released}
        for window in watched:
            for kind in (STARTS, ENDED):
                if window.notice_due(kind, now):
                    self._notice(window, kind, by_tenant.get(window.tenant_id))
        return released

    def _release(
        self, tenant_id: int, import_ids: list[int], watched: list[PauseWindow], now: datetime
    ) -> Released | None:
        """The newest held upload goes to be planned, once no window holds the tenant (its
        window ended, or was removed); the older ones are superseded when it starts."""
        if rules.holding([w for w in watched if w.tenant_id == tenant_id], now) is not None:
            return None
        with self.db.write() as conn:
            if not windows.release(conn, import_ids[0], self.clock(), self.pipeline.node_id):
                return None
            tenant = tenants.by_id(conn, tenant_id)
        log.info("held import released", tenant=tenant.name, import_id=import_ids[0])
        return Released(tenant.name, tenant_id, import_ids[0], len(import_ids) - 1)

    def _notice(self, window: PauseWindow, kind: str, released: Released | None) -> None:
        with self.db.write() as conn:
            if not windows.claim_notice(conn, window, kind, self.clock()):
                return
            tenant = tenants.by_id(conn, window.tenant_id)
            arrived = 0
            if kind == ENDED and released is None:  # released by another node, or before a crash
                found = windows.released_from(conn, window)
                if found is not None:
                    released = Released(tenant.name, tenant.id, *found)
                else:  # none waiting: were there uploads, decided during the window?
                    arrived = windows.sent_during(conn, window)
            email = window_notice(
                kind, tenant.name, window, tenant.emails, self.smtp,
                released=released.import_id if released else None,
                superseded=released.superseded if released else 0, decided_early=arrived,
            )  # fmt: skip
            message_id = outbox.enqueue(
                conn, email, tenant_id=tenant.id, import_id=None, now=self.clock()
            )
            windows.noticed(conn, window, kind, message_id)
            if kind == ENDED and window.yearly:
                self._next_year(conn, window)
        log.info("pause window notice queued", tenant=tenant.name, window=window.id, kind=kind)

    def _next_year(self, conn: Connection, window: PauseWindow) -> None:
        """A yearly window's next year, added in the transaction of its ended notice: once."""
        starts_on, ends_on = rules.next_year(window)
        try:
            windows.add(
                conn, window.tenant_id, starts_on, ends_on, zone=self.windows.zone(),
                now=window_now(self.clock), by=YEARLY_BY, note=window.note, yearly=True,
            )  # fmt: skip
        except ConfigError as exc:  # the tenant has all the windows it may have
            log.error("yearly pause window not renewed", window=window.id, error=str(exc))
