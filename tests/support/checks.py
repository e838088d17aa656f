"""Dropping sets into a tenant's /check on a running `rosterdrop serve`, and reading answers."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import paramiko
import sqlalchemy as sa

from daemon.store.database import Database
from daemon.store.tables import checks, tenants
from tests.support import drop

RESULTS = "/check/results"


def put(sftp: paramiko.SFTPClient, files: Mapping[str, bytes], folder: str = "/check") -> None:
    for name, data in files.items():
        sftp.putfo(io.BytesIO(data), f"{folder}/{name}")


def check_set(port: int, tenant: str, password: str, files: Mapping[str, bytes]) -> None:
    with drop.sftp_session(port, tenant, password) as sftp:
        put(sftp, files)


def check_rows(db: Database, tenant: str) -> list[dict[str, Any]]:
    query = (
        sa.select(checks, tenants.c.name.label("tenant"))
        .join(tenants, tenants.c.id == checks.c.tenant_id)
        .where(tenants.c.name == tenant)
        .order_by(checks.c.id)
    )
    with db.read() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def ended_checks(db: Database, tenant: str, count: int) -> list[dict[str, Any]] | None:
    """The tenant's checks once `count` have ended and been archived, else None."""
    rows = check_rows(db, tenant)
    done = [r for r in rows if r["state"] != "received" and r["archived_at"] is not None]
    return rows if len(done) >= count else None


def fetch_results(port: int, tenant: str, password: str) -> dict[str, bytes]:
    """Every file in /check/results, as the SIS's client downloads them."""
    with drop.sftp_session(port, tenant, password) as sftp:
        out = {}
        for name in sorted(sftp.listdir(RESULTS)):
            buffer = io.BytesIO()
            sftp.getfo(f"{RESULTS}/{name}", buffer)
            out[name] = buffer.getvalue()
        return out


def answer(results: Mapping[str, bytes], name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(results[f"{name}-report.json"])
    return data
