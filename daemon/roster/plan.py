"""A plan: per entity, what applying a snapshot would change in the current roster."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EntityChanges:
    """The diff of one entity.

    `held`: records whose rows were skipped for an error and that stay as they are; of them,
    `held_new` are not in the roster yet, so they are simply not imported.
    `deactivated_skipped`: of the `deactivated`, those the upload still names in a row that
    was skipped for an error without holding them (an unknown school, say): the district
    sent them, yet they go.
    """

    active_before: int = 0
    added: int = 0
    updated: int = 0
    reactivated: int = 0
    deactivated: int = 0
    unchanged: int = 0
    held: int = 0
    held_new: int = 0
    deactivated_skipped: int = 0
    extra_only: int = 0  # updates that change only the extra columns a district sends along
    field_changes: Mapping[str, int] = field(default_factory=dict)

    @property
    def roster_changes(self) -> int:
        """Records whose roster data would change: what the change threshold weighs.
        Reactivations count (an old snapshot sent again would bring many back); updates that
        touch only extra columns don't (a district adding a column to its export)."""
        return self.updated - self.extra_only + self.reactivated

    @property
    def changed(self) -> int:
        return self.added + self.updated + self.reactivated + self.deactivated

    @property
    def active_after(self) -> int:
        return self.active_before + self.added + self.reactivated - self.deactivated

    def as_dict(self) -> dict[str, Any]:
        return {
            "active_before": self.active_before,
            "added": self.added,
            "updated": self.updated,
            "reactivated": self.reactivated,
            "deactivated": self.deactivated,
            "unchanged": self.unchanged,
            "held": self.held,
            "held_new": self.held_new,
            "deactivated_skipped": self.deactivated_skipped,
            "extra_only": self.extra_only,
            "field_changes": dict(self.field_changes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EntityChanges:
        return cls(**{**data, "field_changes": dict(data.get("field_changes", {}))})


@dataclass(frozen=True)
class SchoolDeactivations:
    """Of one entity at one school: its active records before, and how many would go. A
    school losing every student stays under a large district's percentage; this does not."""

    entity: str
    school_id: str
    school_name: str
    active_before: int
    deactivated: int


@dataclass(frozen=True)
class Plan:
    entities: Mapping[str, EntityChanges]
    first_import: bool
    # Only the schools where something would be deactivated (store/school_shares.py).
    schools: tuple[SchoolDeactivations, ...] = ()

    @property
    def changes(self) -> int:
        return sum(c.changed for c in self.entities.values())

    def as_dict(self) -> dict[str, Any]:
        return {name: c.as_dict() for name, c in self.entities.items()}
