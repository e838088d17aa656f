"""The diff of a staged snapshot against the tenant's roster: the plan, with its changed rows
kept in the stage's `changes_*` tables for the thresholds, the kept changes and the apply.

Nothing is written to the roster. One full outer join per entity (SQLite: two index-driven
queries) finds what changes; the counts then read only those changed rows.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from daemon.roster.entities import ENTITIES, SECTION_TEACHERS, SECTIONS, STUDENTS, TEACHERS, Entity
from daemon.roster.plan import EntityChanges, Plan
from daemon.store.school_shares import school_deactivations
from daemon.store.staging import (
    ADD,
    CHANGES,
    DEACTIVATE,
    GONE,
    REACTIVATE,
    SKIPPED,
    STAGE,
    UPDATE,
    Stage,
)
from daemon.store.tables import roster_tables

EXTRA_ONLY = "extra_only"  # updates that change nothing but the extra columns
DEACTIVATED_SKIPPED = "deactivated_skipped"


def plan(stage: Stage, tenant_id: int, *, first_import: bool) -> Plan:
    """Diff the staged snapshot against the tenant's roster; nothing is written to it."""
    stage.flush()
    active: dict[str, dict[str, int]] = {}  # per entity the tenant had: active rows by school
    entities = {e.name: _diff(stage, e, tenant_id, active) for e in ENTITIES}
    known = {e.name: CHANGES[e.name] for e in ENTITIES if not stage.new_to_tenant(e)}
    schools = school_deactivations(stage.conn, tenant_id, known, active)
    return Plan(entities, first_import, schools)


def _diff(
    stage: Stage, entity: Entity, tenant_id: int, active: dict[str, dict[str, int]]
) -> EntityChanges:
    live, changes = roster_tables[entity.name], CHANGES[entity.name]
    fresh, held = stage.counts(entity)
    if not stage.conn.execute(
        sa.select(sa.literal(1)).where(live.c.tenant_id == tenant_id).limit(1)
    ).first():
        # Nothing of this tenant's yet (a first import): every fresh staged row is new,
        # and applying is a plain copy from the stage.
        stage.mark_new_to_tenant(entity)
        return EntityChanges(added=fresh, held=held, held_new=held)
    stage.analyze(entity)
    for select in _changes(stage, entity, tenant_id):
        stage.conn.execute(changes.insert().from_select(list(changes.c.keys()), select))
    counts = dict.fromkeys(
        (ADD, UPDATE, REACTIVATE, DEACTIVATE, EXTRA_ONLY, DEACTIVATED_SKIPPED), 0
    )
    field_changes = dict.fromkeys(entity.fields, 0)
    flags = [changes.c[f"changed_{f}"] for f in entity.fields]
    roster_flags = [changes.c[f"changed_{f}"] for f in entity.fields if f != "extra"]
    extra_only = sa.not_(sa.or_(sa.false(), *roster_flags))
    summary = sa.select(
        changes.c.action,
        sa.func.count(),
        sa.func.sum(sa.case((extra_only, 1), else_=0)),
        *(sa.func.sum(sa.case((flag, 1), else_=0)) for flag in flags),
    ).group_by(changes.c.action)
    for row in stage.conn.execute(summary):
        counts[row[0]] = row[1]
        if row[0] == UPDATE:
            counts[EXTRA_ONLY] = int(row[2] or 0)
            field_changes = {f: int(n or 0) for f, n in zip(entity.fields, row[3:], strict=True)}
    if counts[DEACTIVATE] and stage.skipped_rows(entity):
        counts[DEACTIVATED_SKIPPED] = _named_by_skipped(stage, entity)
    held_new = _held_new(stage, entity, tenant_id) if held else 0
    # One pass for the entity's active records and, for the per-school threshold, their
    # schools: a second count by school read all 700,000 enrollments again (0.5 s). A delta
    # counted them as it read their keys (0.1 s less).
    counted = stage.active_by_school(entity)
    if counted is None:
        by_school = sa.select(live.c.school_id, sa.func.count()).where(
            live.c.tenant_id == tenant_id, live.c.active
        )
        rows = stage.conn.execute(by_school.group_by(live.c.school_id))
        counted = {school_id: count for school_id, count in rows}
    active[entity.name] = counted
    return EntityChanges(
        active_before=sum(active[entity.name].values()),
        added=counts[ADD],
        updated=counts[UPDATE],
        reactivated=counts[REACTIVATE],
        deactivated=counts[DEACTIVATE],
        deactivated_skipped=counts[DEACTIVATED_SKIPPED],
        extra_only=counts[EXTRA_ONLY],
        unchanged=fresh - counts[ADD] - counts[UPDATE] - counts[REACTIVATE],
        held=held,
        held_new=held_new,
        field_changes={f: n for f, n in field_changes.items() if n},
    )


def _held_new(staged: Stage, entity: Entity, tenant_id: int) -> int:
    """Held rows whose record the roster does not have: "kept as it is" would be untrue,
    they are not imported at all."""
    live, stage = roster_tables[entity.name], STAGE[entity.name]
    known = sa.exists().where(
        live.c.tenant_id == tenant_id, *(live.c[k] == stage.c[k] for k in entity.key)
    )
    query = sa.select(sa.func.count()).where(stage.c.held, ~known)
    return int(staged.conn.execute(query).scalar_one())


def _named_by_skipped(stage: Stage, entity: Entity) -> int:
    """How many records to deactivate a skipped row names. A person by id alone, without
    the school: a student whose row names an unknown school is still that student. Other
    records by their whole key (section ids repeat from school to school)."""
    changes, skipped = CHANGES[entity.name], SKIPPED[entity.name]
    ids = entity.key[1:] if entity in (STUDENTS, TEACHERS) else entity.key
    if not stage.postgres:
        columns = ", ".join(ids)
        stage.conn.execute(
            sa.text(
                f"CREATE INDEX IF NOT EXISTS temp.{skipped.name}_ids ON {skipped.name} ({columns})"
            )
        )
    named = sa.exists().where(*(skipped.c[k] == changes.c[k] for k in ids))
    query = sa.select(sa.func.count()).where(changes.c.action == DEACTIVATE, named)
    return int(stage.conn.execute(query).scalar_one())


def _changes(sink: Stage, entity: Entity, tenant_id: int) -> list[sa.Select[Any]]:
    """The queries that find the changed rows: records to add, update, reactivate (from
    the stage) and to deactivate (from the roster)."""
    live, stage = roster_tables[entity.name], STAGE[entity.name]
    fresh = sa.not_(stage.c.held)
    delta = sink.delta(entity)
    if sink.postgres and not delta:
        # One full outer hash join: a single pass over each side.
        live = sa.select(live).where(live.c.tenant_id == tenant_id).subquery()  # type: ignore[assignment]
        on = sa.and_(*(live.c[k] == stage.c[k] for k in entity.key))
        source: Any = stage.join(live, on, full=True)
    else:
        # SQLite joins through indexes, so look each staged row up by the roster's key, then
        # each active roster row up by the stage's key. (A delta's few staged rows: the same,
        # on either database, and only the gone keys' roster rows.)
        sink.index_key(entity)
        on = sa.and_(live.c.tenant_id == tenant_id, *(live.c[k] == stage.c[k] for k in entity.key))
        source = stage.outerjoin(live, on)
    missing, gone = live.c.tenant_id.is_(None), stage.c[entity.key[0]].is_(None)
    # A dropped optional value leaves the roster's own in place.
    staged = {
        f: sa.case((stage.c.kept.contains(f",{f},") & ~missing, live.c[f]), else_=stage.c[f])
        if f in entity.keepable
        else stage.c[f]
        for f in entity.fields
    }
    differs = [live.c[f].is_distinct_from(staged[f]) for f in entity.fields]
    upsert = ~gone & fresh & (missing | ~live.c.active | sa.or_(sa.false(), *differs))
    action = sa.case((missing, ADD), (gone, DEACTIVATE), (~live.c.active, REACTIVATE), else_=UPDATE)
    keys_out = [sa.func.coalesce(stage.c[k], live.c[k]) for k in entity.key]
    values = [*keys_out, *staged.values(), action, *differs]
    if sink.postgres and not delta:
        vanished = gone & live.c.active & ~_held_section(entity, live)
        return [sa.select(*values).select_from(source).where(upsert | vanished)]
    table = roster_tables[entity.name]
    in_stage = sa.exists().where(*(stage.c[k] == table.c[k] for k in entity.key))
    roster_key = [table.c[k] for k in entity.key]
    # A delta's: only the roster rows of keys no row named, looked up by the primary key.
    gone_only = sa.tuple_(*roster_key).in_(sa.select(*GONE[entity.name].c)) if delta else sa.true()
    deactivate = (
        sa.select(
            *roster_key,
            *(sa.null() for _ in entity.fields),
            sa.literal(DEACTIVATE),
            *(sa.null() for _ in entity.fields),
        )
        .where(
            table.c.tenant_id == tenant_id,
            gone_only,
            table.c.active,
            ~in_stage,
            ~_held_section(entity, table),
        )
        # Through the primary key, in the stage index's order: left to itself SQLite reads
        # a narrower index of the roster (migration 0007's by student), and then each
        # look-up into the stage lands elsewhere; 700,000 enrollments took 3-4x as long.
        .order_by(*roster_key)
    )
    return [sa.select(*values).select_from(source).where(upsert), deactivate]


def _held_section(entity: Entity, live: Any) -> sa.ColumnElement[bool]:
    """Whether a roster row is a teacher link of a section held in the stage. A held section
    row is not trusted in any column, its teacher columns included: the section keeps all
    its current teachers, also those the broken row no longer names, but not one who is
    gone from teachers.csv (and so deactivated): no active link to an inactive teacher."""
    if entity is not SECTION_TEACHERS:
        return sa.false()
    sections, teachers = STAGE[SECTIONS.name], STAGE[TEACHERS.name]
    return sa.and_(
        sa.exists().where(
            sections.c.held,
            sections.c.school_id == live.c.school_id,
            sections.c.section_id == live.c.section_id,
        ),
        # in teachers.csv under any school: a section may have a teacher from another
        sa.exists().where(teachers.c.teacher_id == live.c.teacher_id),
    )
