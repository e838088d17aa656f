"""Read-only summaries for the operator's pages: each tenant's last import and paused count."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from daemon.store import tenants as tenant_store
from daemon.store.tables import imports
from daemon.store.tenants import Tenant

PAUSED = "paused"  # ImportState.PAUSED's value (the store does not import the roster's states)


@dataclass(frozen=True)
class TenantSummary:
    tenant: Tenant
    last_import_id: int | None
    last_import_state: str | None
    last_import_at: datetime | None
    paused: int


def tenant_summaries(
    conn: Connection, *, limit: int, after: str | None = None
) -> list[TenantSummary]:
    """Tenants by name, one page (keyset: names after `after`), with their newest import and
    how many of their imports are paused: two grouped queries over the page's tenants."""
    page = tenant_store.page(conn, limit=limit, after=after)
    ids = [t.id for t in page]
    if not ids:
        return []
    newest: dict[int, int] = dict(
        conn.execute(
            sa.select(imports.c.tenant_id, sa.func.max(imports.c.id))
            .where(imports.c.tenant_id.in_(ids))
            .group_by(imports.c.tenant_id)
        ).all()
    )
    last = {
        row.id: row
        for row in conn.execute(
            sa.select(imports.c.id, imports.c.state, imports.c.received_at).where(
                imports.c.id.in_(list(newest.values()))
            )
        )
    }
    paused: dict[int, int] = dict(
        conn.execute(
            sa.select(imports.c.tenant_id, sa.func.count())
            .where(imports.c.tenant_id.in_(ids), imports.c.state == PAUSED)
            .group_by(imports.c.tenant_id)
        ).all()
    )
    summaries = []
    for tenant in page:
        row = last.get(newest.get(tenant.id, -1))
        summaries.append(
            TenantSummary(
                tenant=tenant,
                last_import_id=row.id if row else None,
                last_import_state=row.state if row else None,
                last_import_at=row.received_at if row else None,
                paused=int(paused.get(tenant.id, 0)),
            )
        )
    return summaries
