"""Import thresholds: the rules that pause a plan before it touches the roster."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from daemon.roster.plan import Plan
from daemon.roster.tenant import TenantSettings


@dataclass(frozen=True)
class TrippedThreshold:
    """One rule a plan broke: `count` of `total` rows (`percent`) against `limit`."""

    rule: str  # "deactivate", "update" or "row_errors"
    entity: str  # an entity name, or "all files" for row errors
    count: int
    total: int
    limit: float

    @property
    def percent(self) -> float:
        return 100.0 * self.count / self.total if self.total else 100.0

    def describe(self) -> str:
        if self.rule == "row_errors":
            return (
                f"{self.count} row error{'s' if self.count != 1 else ''}"
                f" (this district allows {int(self.limit)})"
            )
        verb = "deactivate" if self.rule == "deactivate" else "change"
        return (
            f"would {verb} {self.count} of {self.total} active {self.entity}"
            f" ({self.percent:.1f}%, limit {self.limit:g}%)"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "entity": self.entity,
            "count": self.count,
            "total": self.total,
            "percent": round(self.percent, 2),
            "limit": self.limit,
            "message": self.describe(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrippedThreshold:
        return cls(data["rule"], data["entity"], data["count"], data["total"], data["limit"])


def evaluate(plan: Plan, row_errors: int, settings: TenantSettings) -> list[TrippedThreshold]:
    """Every threshold the plan trips; an empty list means it may be applied unattended."""
    tripped: list[TrippedThreshold] = []
    if row_errors > settings.max_row_errors:
        tripped.append(
            TrippedThreshold("row_errors", "all files", row_errors, 0, settings.max_row_errors)
        )
    for name, changes in plan.entities.items():
        # Records coming back count among the changes and so among what they are a share of,
        # keeping every percentage at most 100 (a limit of 100 never pauses).
        rules = [
            (
                "update",
                changes.roster_changes,
                settings.max_update_percent,
                changes.active_before + changes.reactivated,
            ),
        ]
        if not plan.first_import:
            deactivate = changes.deactivated, settings.max_deactivate_percent, changes.active_before
            rules.insert(0, ("deactivate", *deactivate))
        for rule, count, limit, base in rules:
            if count < max(settings.threshold_floor, 1) or base == 0:
                continue
            if 100.0 * count / base > limit:
                tripped.append(TrippedThreshold(rule, name, count, base, limit))
    return tripped
