"""Import thresholds: the rules that pause a plan before it touches the roster."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from daemon.roster.plan import Plan, SchoolDeactivations
from daemon.roster.tenant import TenantSettings

# What a school's deactivations are weighed against: the entities that belong to a school
# (a section's teacher links follow their section and teacher, so they are not weighed).
PER_SCHOOL_ENTITIES = ("teachers", "students", "sections", "enrollments")


@dataclass(frozen=True)
class TrippedThreshold:
    """One rule a plan broke: `count` of `total` (`percent`) against `limit`.

    For deactivations and updates `total` is the entity's active records and `limit` a
    percentage; for row errors `total` is the rows read in all five files and `limit` the
    number of rows with errors a district allows. A deactivation counted at one school
    names it (`school`, `school_name`); the district's own counts name none.

    A pause window's hold (rule "window", made by roster/windows.py) is no threshold but
    pauses the same way: `entity` says the window's dates and note, `count` is the window's
    id (an approval covers that window), `total` and `limit` are 0."""

    rule: str  # "deactivate", "update", "row_errors" or "window"
    entity: str  # an entity name, or "all files" for row errors
    count: int
    total: int
    limit: float
    school: str = ""
    school_name: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        """What an approval covers: the rule, for this entity, at this school (or none)."""
        return self.rule, self.entity, self.school

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

    @property
    def where(self) -> str:
        """The school a count is at, as people read it: "Lincoln Elementary (school 7)"."""
        if not self.school:
            return ""
        return (
            f"{self.school_name} (school {self.school})"
            if self.school_name
            else (f"school {self.school}")
        )

    def describe(self) -> str:
        if self.rule == "window":
            return f"arrived during the pause window {self.entity}"
        if self.rule == "row_errors":
            rows = f"{self.count:,} row{'' if self.count == 1 else 's'} with errors"
            allows = f"this district allows {int(self.limit):,}"
            if not self.total:  # recorded before the rows read were kept with it
                return f"{rows} ({allows})"
            return f"{rows} of {self.total:,} read ({self.share}; {allows})"
        verb = "deactivate" if self.rule == "deactivate" else "change"
        at = f" at {self.where}" if self.school else ""
        return (
            f"would {verb} {self.count:,} of {self.total:,} active {self.entity}{at}"
            f" ({self.share}, limit {self.limit:g}%)"
        )

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "rule": self.rule,
            "entity": self.entity,
            "count": self.count,
            "total": self.total,
            "percent": round(self.percent, 2),
            "limit": self.limit,
            "message": self.describe(),
        }
        if self.school:
            data["school"], data["school_name"] = self.school, self.school_name
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrippedThreshold:
        return cls(
            data["rule"],
            data["entity"],
            data["count"],
            data["total"],
            data["limit"],
            data.get("school", ""),
            data.get("school_name", ""),
        )


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
            if _trips(count, base, limit, settings):
                tripped.append(TrippedThreshold(rule, name, count, base, limit))
    if settings.per_school and not plan.first_import:
        tripped.extend(_school_deactivations(plan.schools, tripped, settings))
    return tripped


def beyond_approval(
    tripped: list[TrippedThreshold], approved: list[dict[str, object]]
) -> list[TrippedThreshold]:
    """The thresholds a re-planned approved import trips beyond what the person approved: the
    roster may have moved since, and an approval covers only what was shown."""
    allowed = {TrippedThreshold.from_dict(a).key: int(str(a["count"])) for a in approved}
    return [t for t in tripped if t.count > allowed.get(t.key, -1)]


def _trips(count: int, base: int, limit: float, settings: TenantSettings) -> bool:
    if count < max(settings.threshold_floor, 1) or base == 0:
        return False
    return 100.0 * count / base > limit


def _school_deactivations(
    schools: tuple[SchoolDeactivations, ...],
    district: list[TrippedThreshold],
    settings: TenantSettings,
) -> list[TrippedThreshold]:
    """The deactivation threshold at each school, with the district's limit and floor. An
    entity that already trips over the whole district is not weighed again school by school:
    the pause says the same, and its approval covers those schools too."""
    tripped_entities = {t.entity for t in district if t.rule == "deactivate"}
    limit = settings.max_deactivate_percent
    found = [
        TrippedThreshold(
            "deactivate",
            s.entity,
            s.deactivated,
            s.active_before,
            limit,
            s.school_id,
            s.school_name,
        )
        for s in schools
        if s.entity in PER_SCHOOL_ENTITIES
        and s.entity not in tripped_entities
        and _trips(s.deactivated, s.active_before, limit, settings)
    ]
    order = {name: n for n, name in enumerate(PER_SCHOOL_ENTITIES)}
    return sorted(found, key=lambda t: (order[t.entity], -t.percent, t.school))
