"""Import thresholds: the rules that pause a plan before it touches the roster."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from daemon.roster.plan import Plan
from daemon.roster.tenant import TenantSettings


@dataclass(frozen=True)
class TrippedThreshold:
    """One rule a plan broke: `count` of `total` (`percent`) against `limit`.

    For deactivations and updates `total` is the entity's active records and `limit` a
    percentage; for row errors `total` is the rows read in all five files and `limit` the
    number of rows with errors a district allows."""

    rule: str  # "deactivate", "update" or "row_errors"
    entity: str  # an entity name, or "all files" for row errors
    count: int
    total: int
    limit: float

    @property
    def percent(self) -> float:
        return 100.0 * self.count / self.total if self.total else 100.0

    @property
    def share(self) -> str:
        """The percentage as people read it: a few rows are never rounded away to 0.0%."""
        percent = self.percent
        if 99.9 < percent < 100:
            return ">99.9%"
        if self.rule != "row_errors":
            # A share the rule found above its limit never reads as the limit itself
            # (0.15% against 0.1% is not "0.1%"): as many decimals as that takes.
            for digits in (1, 2, 3):
                text = f"{percent:.{digits}f}"
                if float(text) > self.limit:
                    break
            return f"{text}%"
        return "<0.1%" if 0 < percent < 0.1 else f"{percent:.1f}%"

    def describe(self) -> str:
        if self.rule == "row_errors":
            rows = f"{self.count:,} row{'' if self.count == 1 else 's'} with errors"
            allows = f"this district allows {int(self.limit):,}"
            if not self.total:  # recorded before the rows read were kept with it
                return f"{rows} ({allows})"
            return f"{rows} of {self.total:,} read ({self.share}; {allows})"
        verb = "deactivate" if self.rule == "deactivate" else "change"
        return (
            f"would {verb} {self.count:,} of {self.total:,} active {self.entity}"
            f" ({self.share}, limit {self.limit:g}%)"
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


def evaluate(
    plan: Plan, row_errors: int, rows_read: int, settings: TenantSettings
) -> list[TrippedThreshold]:
    """Every threshold the plan trips; an empty list means it may be applied unattended.
    `row_errors` of the `rows_read` in all five files were skipped for errors."""
    tripped: list[TrippedThreshold] = []
    if row_errors > settings.max_row_errors:
        tripped.append(
            TrippedThreshold(
                "row_errors", "all files", row_errors, rows_read, settings.max_row_errors
            )
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
