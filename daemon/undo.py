"""Undoing applied imports: which imports an undo reverses, what it would change, and asking
for one (a new import, source `undo`, that the pipeline runs like any other).

Only the newest applied import is undone directly; undoing an older one undoes every applied
import back to it, newest first, in one undo import (asked for with `back_to`). The undo
is not held by the thresholds: the person who asks for it is shown its plan first (the web's
confirmation, `imports undo --dry-run`), as an approval covers what the person was shown.
It refuses to run if the roster moved after it was asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from daemon import folders
from daemon.errors import Conflict
from daemon.intake import Intake
from daemon.roster.plan import Plan
from daemon.roster.problems import ProblemLog
from daemon.store import imports
from daemon.store.changelog import Undo
from daemon.store.database import Database
from daemon.store.imports import APPLIED, ImportRecord

SOURCE = "undo"


@dataclass(frozen=True)
class UndoPlan:
    """What undoing `target` means: the imports it reverses (newest first) and their net
    change to the roster."""

    target: ImportRecord
    undone: list[ImportRecord]
    plan: Plan

    @property
    def newest(self) -> int:
        return self.undone[0].id

    @property
    def back_to(self) -> bool:
        """Whether more than `target` is undone (it is not the newest applied import)."""
        return len(self.undone) > 1


def _ids(records: list[ImportRecord]) -> str:
    """ "import #7", "imports #7, #6 and #5"."""
    names = [f"#{r.id}" for r in records]
    if len(names) == 1:
        return f"import {names[0]}"
    return "imports " + ", ".join(names[:-1]) + " and " + names[-1]


def undone_by(
    conn: Connection, target: ImportRecord, *, before: int | None = None
) -> list[ImportRecord]:
    """The applied imports an undo of `target` reverses, newest first (`before`: only
    those older than that import, the undo itself). Refused when `target` was not applied
    or the change log of one of them has expired."""
    if target.state not in APPLIED:
        raise Conflict(
            f"import #{target.id} is {target.state.value.replace('_', ' ')}: only an applied"
            " import can be undone"
        )
    # Unbounded, yet bounded by the retention: an import older than it cannot be undone.
    undone = imports.list_recent(
        conn, tenant_id=target.tenant_id, states=APPLIED, before=before, at_least=target.id,
        limit=None,
    )  # fmt: skip
    gone = [r for r in undone if r.archived_at is not None and r.files_dir is None]
    if gone:
        raise Conflict(
            f"the change log of {_ids(gone)} has expired with its files ([spool]"
            f" retention_days): import #{target.id} can no longer be undone"
        )
    return undone


def plan_undo(db: Database, import_id: int) -> UndoPlan:
    """What undoing `import_id` would change, computed and rolled back (nothing is kept)."""
    with db.read() as conn:
        target = imports.get(conn, import_id)
        undone = undone_by(conn, target)
        undo = Undo(conn, target.tenant_id, [r.id for r in undone])
        plan = undo.plan()
        undo.close()
    return UndoPlan(target, undone, plan)


def not_newest(plan: UndoPlan) -> str:
    """Why undoing an older import asks for more than it."""
    return (
        f"import #{plan.target.id} is not the newest applied import (#{plan.newest} is):"
        f" undoing it means undoing {_ids(plan.undone)}, newest first, back to it"
    )


def ask(intake: Intake, import_id: int, *, back_to: bool, newest: int | None = None) -> int:
    """Record an undo import of `import_id`, ready for the pipeline to run; returns its id.
    `back_to` allows undoing more than `import_id`; `newest`: the newest applied import the
    person was shown (refused if another was applied since)."""
    with intake.db.write() as conn:
        target = imports.get(conn, import_id)
        undone = undone_by(conn, target)
        if newest is not None and undone[0].id != newest:
            raise Conflict(
                f"import #{undone[0].id} was applied since you were shown this undo: look at"
                " what it would change again"
            )
        if len(undone) > 1 and not back_to:
            raise Conflict(
                f"import #{import_id} is not the newest applied import (#{undone[0].id} is):"
                f" undoing it means undoing {_ids(undone)}, newest first, back to it"
                f" (`rosterdrop imports undo {import_id} --back-to`; --dry-run shows what it"
                " changes)"
            )
        now = intake.now()
        # Run where it is asked (the web's serve, a node; the CLI, none): not another's to recover.
        undo_id = imports.create(
            conn, target.tenant_id, source=SOURCE, files={}, now=now, node_id=intake.node_id,
            source_format=target.source_format,  # it puts back what that format's import changed
        )  # fmt: skip
        folder = intake.paths.spool / target.tenant / str(undo_id)
        imports.update(conn, undo_id, now, files_dir=str(folder), undoes=import_id)
    folders.claim(folder, {}, move=False, others=[])  # no files: its report and manifest
    return undo_id


def moved_since(conn: Connection, record: ImportRecord) -> str | None:
    """Why the undo `record` may no longer run (an import applied after it was asked for)."""
    assert record.undoes is not None
    later = [
        r
        for r in imports.list_recent(
            conn, tenant_id=record.tenant_id, states=APPLIED, at_least=record.undoes, limit=None
        )
        if r.id != record.id
        and r.finished_at is not None and r.finished_at > record.received_at
    ]  # fmt: skip
    if not later:
        return None
    return (
        f"{_ids(later)} {'was' if len(later) == 1 else 'were'} applied after this undo was"
        " asked for: nothing was undone;"
        f" ask again to undo back to #{record.undoes}"
    )


def carry_out(
    conn: Connection, record: ImportRecord, problems: ProblemLog, now: datetime
) -> Plan | None:
    """Plan, keep and apply the undo import `record` in `conn`'s transaction; None (with a
    fatal problem said) when the roster moved since it was asked for."""
    assert record.undoes is not None
    refused = moved_since(conn, record)
    if refused:
        problems.fatal("undo_refused", refused)
        return None
    target = imports.get(conn, record.undoes)
    undone = undone_by(conn, target, before=record.id)
    problems.warning(
        "undo",
        f"this import undid {_ids(undone)}: the roster is back to what it was before import"
        f" #{record.undoes} was applied",
    )
    undoing = Undo(conn, record.tenant_id, [r.id for r in undone])
    plan = undoing.plan()
    undoing.keep(record.id)  # its own change log: undoing it is a redo
    undoing.apply(record.id, now)
    undoing.close()
    return plan
