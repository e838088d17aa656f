"""A plan's deactivations school by school: how many records of each entity a school would
lose, against how many it has active (for the per-school threshold, roster/thresholds.py).

It reads the staging's change tables after the diff, so it costs one grouped pass over the
records to deactivate (usually few); the diff has counted the schools' active records.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from daemon.roster.plan import SchoolDeactivations
from daemon.roster.thresholds import PER_SCHOOL_ENTITIES
from daemon.store.tables import roster_tables

DEACTIVATE = "deactivate"  # staging's action for a record that goes


def school_deactivations(
    conn: Connection,
    tenant_id: int,
    changes: Mapping[str, sa.Table],
    active: Mapping[str, Mapping[str, int]],
) -> tuple[SchoolDeactivations, ...]:
    """Per entity and school that would lose records: its active records and how many go.
    `changes` are the staging's change tables of the entities the tenant already had,
    `active` their active records by school (counted by the diff)."""
    losses: dict[tuple[str, str], int] = {}
    for name in PER_SCHOOL_ENTITIES:
        table = changes.get(name)
        if table is None:
            continue
        query = (
            sa.select(table.c.school_id, sa.func.count())
            .where(table.c.action == DEACTIVATE)
            .group_by(table.c.school_id)
        )
        for school_id, count in conn.execute(query):
            losses[(name, school_id)] = count
    if not losses:
        return ()
    schools = sorted({school_id for _, school_id in losses})
    names = _school_names(conn, tenant_id, schools)
    found: list[SchoolDeactivations] = []
    for name in sorted({entity for entity, _ in losses}):
        found.extend(
            SchoolDeactivations(
                name, school_id, names.get(school_id, ""), active[name].get(school_id, 0), count
            )
            for (entity, school_id), count in sorted(losses.items())
            if entity == name
        )
    return tuple(found)


def _school_names(conn: Connection, tenant_id: int, schools: list[str]) -> dict[str, str]:
    """The roster's names (a school gone from schools.csv is still named by its last one)."""
    live = roster_tables["schools"]
    query = sa.select(live.c.school_id, live.c.name).where(
        live.c.tenant_id == tenant_id, live.c.school_id.in_(schools)
    )
    return {school_id: name or "" for school_id, name in conn.execute(query)}
