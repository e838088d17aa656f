"""A tenant's pause windows in the database: adding, listing and removing them, what they
mean for an import run now (a hold, a one-time override), the notices claimed once by their
key, and releasing the newest upload a window held."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from daemon.errors import ConfigError, NotFound
from daemon.roster import windows as rules
from daemon.roster.outcome import ImportState
from daemon.roster.tenant import TenantSettings
from daemon.roster.thresholds import TrippedThreshold
from daemon.roster.windows import PauseWindow
from daemon.store.tables import imports, pause_windows, window_notices

WINDOW_RULE = "window"  # the rule a held import's `tripped` names


def add(
    conn: Connection,
    tenant_id: int,
    starts_on: date,
    ends_on: date,
    *,
    zone: ZoneInfo,
    now: datetime,
    by: str,
    note: str = "",
    yearly: bool = False,
    expect_percent: float | None = None,
) -> PauseWindow:
    """Add a window (checked: roster/windows.py); raises ConfigError."""
    note = note.strip()
    rules.check_window(starts_on, ends_on, now.astimezone(zone).date(), note, expect_percent)
    count = conn.execute(
        sa.select(sa.func.count()).where(pause_windows.c.tenant_id == tenant_id)
    ).scalar_one()
    if count >= rules.MAX_WINDOWS:
        raise ConfigError(f"a tenant has at most {rules.MAX_WINDOWS} pause windows")
    starts_at, ends_at = rules.bounds(starts_on, ends_on, zone)
    result = conn.execute(
        pause_windows.insert().values(
            tenant_id=tenant_id,
            starts_on=starts_on,
            ends_on=ends_on,
            starts_at=starts_at,
            ends_at=ends_at,
            note=note,
            yearly=yearly,
            expect_percent=expect_percent,
            expect_by=by if expect_percent is not None else None,
            created_at=now,
            created_by=by,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return get(conn, tenant_id, int(key[0]))


def add_yearly(
    conn: Connection, tenant_id: int, rule: str, *, zone: ZoneInfo, now: datetime, by: str
) -> PauseWindow | None:
    """A new tenant's default ([windows] new_tenant): the rule's next window, yearly; none
    when the rule is empty."""
    if not rule.strip():
        return None
    starts_on, ends_on = rules.next_occurrence(rules.yearly_rule(rule), now.astimezone(zone).date())
    return add(
        conn, tenant_id, starts_on, ends_on, zone=zone, now=now, by=by, yearly=True,
        note="school year rollover",
    )  # fmt: skip


def get(conn: Connection, tenant_id: int, window_id: int) -> PauseWindow:
    row = (
        conn.execute(
            sa.select(pause_windows).where(
                pause_windows.c.tenant_id == tenant_id, pause_windows.c.id == window_id
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no pause window #{window_id} for this tenant")
    return _window(row)


def list_for(conn: Connection, tenant_id: int) -> list[PauseWindow]:
    query = (
        sa.select(pause_windows)
        .where(pause_windows.c.tenant_id == tenant_id)
        .order_by(pause_windows.c.starts_on, pause_windows.c.id)
    )
    return [_window(row) for row in conn.execute(query).mappings()]


def remove(conn: Connection, tenant_id: int, window_id: int) -> PauseWindow:
    """Remove a window (its notices go with it); raises NotFound."""
    window = get(conn, tenant_id, window_id)
    conn.execute(window_notices.delete().where(window_notices.c.window_id == window_id))
    conn.execute(pause_windows.delete().where(pause_windows.c.id == window_id))
    return window


def watched(conn: Connection, now: datetime) -> list[PauseWindow]:
    """Every window a notice or an override may still be due for (not long ended)."""
    since = now - max(rules.LATE_NOTICE, rules.EXPECT_VALID)
    query = sa.select(pause_windows).where(pause_windows.c.ends_at > since)
    return [_window(row) for row in conn.execute(query.order_by(pause_windows.c.id)).mappings()]


@dataclass(frozen=True)
class WindowRules:
    """What a tenant's windows mean for an import planned now."""

    hold: PauseWindow | None  # the window holding uploads now
    expect: PauseWindow | None  # the ended window whose one-time override applies

    @property
    def held(self) -> list[TrippedThreshold]:
        return [self.hold.hold()] if self.hold else []

    def settings(self, settings: TenantSettings) -> TenantSettings:
        return rules.expected_settings(settings, self.expect)

    def used(self, conn: Connection, import_id: int) -> None:
        """The import was applied: a one-time override is spent (in its transaction)."""
        if self.expect is not None:
            conn.execute(
                pause_windows.update()
                .where(pause_windows.c.id == self.expect.id)
                .values(expect_import_id=import_id)
            )


def rules_for(conn: Connection, tenant_id: int, now: datetime) -> WindowRules:
    since = now - rules.EXPECT_VALID
    query = sa.select(pause_windows).where(
        pause_windows.c.tenant_id == tenant_id, pause_windows.c.ends_at > since
    )
    found = [_window(row) for row in conn.execute(query).mappings()]
    return WindowRules(rules.holding(found, now), rules.expectation(found, now))


def claim_notice(conn: Connection, window: PauseWindow, kind: str, now: datetime) -> bool:
    """Take the one notice of this kind about this window; False if it was taken already
    (by another node, or before a restart). The key decides, not any process's memory."""
    values = {
        "tenant_id": window.tenant_id,
        "window_id": window.id,
        "kind": kind,
        "created_at": now,
    }
    dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(window_notices)
        .values(**values)
        .on_conflict_do_nothing()
        .returning(window_notices.c.kind)
    )
    return conn.execute(statement).first() is not None


def noticed(conn: Connection, window: PauseWindow, kind: str, outbox_id: int) -> None:
    conn.execute(
        window_notices.update()
        .where(
            window_notices.c.window_id == window.id,
            window_notices.c.kind == kind,
        )
        .values(outbox_id=outbox_id)
    )


def notices(conn: Connection, tenant_id: int) -> set[tuple[int, str]]:
    query = sa.select(window_notices.c.window_id, window_notices.c.kind).where(
        window_notices.c.tenant_id == tenant_id
    )
    return {(window_id, kind) for window_id, kind in conn.execute(query)}


def held_imports(conn: Connection) -> dict[int, list[int]]:
    """Per tenant, its paused imports that a window holds, newest first."""
    query = (
        sa.select(imports.c.tenant_id, imports.c.id, imports.c.tripped)
        .where(imports.c.state == str(ImportState.PAUSED))
        .order_by(imports.c.id.desc())
    )
    held: dict[int, list[int]] = {}
    for tenant_id, import_id, tripped in conn.execute(query):
        if _held(tripped or []):
            held.setdefault(tenant_id, []).append(import_id)
    return held


def _held(tripped: Iterable[dict[str, Any]]) -> bool:
    return any(t.get("rule") == WINDOW_RULE for t in tripped)


def _sent_during(window: PauseWindow) -> sa.ColumnElement[bool]:
    """The tenant's uploads (not undos) received while `window` held it."""
    return sa.and_(
        imports.c.tenant_id == window.tenant_id,
        imports.c.source != "undo",
        imports.c.received_at >= window.starts_at,
        imports.c.received_at < window.ends_at,
    )


def sent_during(conn: Connection, window: PauseWindow) -> int:
    """How many uploads arrived while `window` held the tenant."""
    query = sa.select(sa.func.count()).where(_sent_during(window))
    return int(conn.execute(query).scalar_one())


def released_from(conn: Connection, window: PauseWindow) -> tuple[int, int] | None:
    """The upload `window` held that was released at its end (by whichever node, or by a run
    that stopped before its notice), and how many older ones it superseded; None if none."""
    during = _sent_during(window)
    released = conn.execute(
        sa.select(imports.c.id)
        .where(
            during,
            imports.c.decided_by.is_(None),  # not approved early
            imports.c.state != str(ImportState.SUPERSEDED),
            imports.c.updated_at >= window.ends_at,  # released: touched after the end
        )
        .order_by(imports.c.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if released is None:
        return None
    older = conn.execute(
        sa.select(sa.func.count()).where(
            during,
            imports.c.id < released,
            imports.c.state == str(ImportState.SUPERSEDED),
        )
    ).scalar_one()
    return int(released), int(older)


def release(conn: Connection, import_id: int, now: datetime, node_id: int | None) -> bool:
    """Send a held import back to be planned and checked as a fresh upload, run by the
    releasing node (`node_id`; None: one node). Only one caller wins (the state is the
    condition); False when another did, or it was decided since, or a newer upload of the
    tenant came (that one supersedes the held one when it starts: an older snapshot must
    never be applied after it)."""
    newer = imports.alias("newer")
    came_since = sa.exists().where(
        newer.c.tenant_id == imports.c.tenant_id,
        newer.c.id > imports.c.id,
        newer.c.source != "undo",  # an undo is no upload (daemon/undo.py SOURCE)
    )
    result = conn.execute(
        imports.update()
        .where(
            imports.c.id == import_id,
            imports.c.state == str(ImportState.PAUSED),
            ~came_since,
        )
        .values(
            state=str(ImportState.RECEIVED),
            tripped=None,
            attempts=0,
            updated_at=now,
            node_id=node_id,
        )
    )
    return bool(result.rowcount)


def _window(row: sa.RowMapping) -> PauseWindow:
    return PauseWindow(
        id=row["id"], tenant_id=row["tenant_id"], starts_on=row["starts_on"],
        ends_on=row["ends_on"], starts_at=row["starts_at"], ends_at=row["ends_at"],
        note=row["note"] or "", yearly=bool(row["yearly"]),
        expect_percent=row["expect_percent"], expect_by=row["expect_by"],
        expect_import_id=row["expect_import_id"],
    )  # fmt: skip
