"""Pause windows, the pure rules: when a tenant's uploads are held rather than applied (the
school year's rollover), when its notices are due, and the one-time override a window's end
may carry. Everything takes `now` (or `today`): the caller owns the clock."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from daemon.errors import ConfigError
from daemon.roster.tenant import TenantSettings
from daemon.roster.thresholds import TrippedThreshold

NOTICE_LEAD = timedelta(days=1)  # "a window starts tomorrow" goes out this long before it
# A notice no longer due this long after its window ended (a daemon down for weeks).
LATE_NOTICE = timedelta(days=7)
# A window's one-time override serves the first import applied within this long of its end.
EXPECT_VALID = timedelta(days=30)
MAX_WINDOW_DAYS = 366  # longer is a typo (a window would hold a whole year's uploads)
MAX_WINDOWS = 50  # per tenant: more is a mistake, not a calendar
MAX_NOTE_CHARS = 200
STARTS, ENDED = "starts", "ended"  # the notices' kinds
_RULE = re.compile(r"^\s*(\d{2})-(\d{2})\s*\.\.\s*(\d{2})-(\d{2})\s*$")


@dataclass(frozen=True)
class PauseWindow:
    """Uploads are held from `starts_at` (the first moment of `starts_on`) until `ends_at`
    (the midnight after `ends_on`, the last day held); both in the daemon's window timezone."""

    id: int
    tenant_id: int
    starts_on: date
    ends_on: date
    starts_at: datetime
    ends_at: datetime
    note: str = ""
    yearly: bool = False  # when it ends, the same days of the next year are added
    expect_percent: float | None = None  # the one-time threshold override at its end
    expect_by: str | None = None  # who confirmed it
    expect_import_id: int | None = None  # the import it served

    def holds(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    @property
    def released_on(self) -> date:
        return self.ends_on + timedelta(days=1)

    def notice_due(self, kind: str, now: datetime) -> bool:
        if kind == STARTS:
            return self.starts_at - NOTICE_LEAD <= now < self.ends_at
        return self.ends_at <= now < self.ends_at + LATE_NOTICE

    def expectation_open(self, now: datetime) -> bool:
        return (
            self.expect_percent is not None
            and self.expect_import_id is None
            and self.ends_at <= now < self.ends_at + EXPECT_VALID
        )

    def dates(self) -> str:
        note = f" ({self.note})" if self.note else ""
        return f"{self.starts_on.isoformat()} to {self.ends_on.isoformat()}{note}"

    def described(self) -> str:
        """The window as `tenant pause list` and the audit log say it."""
        said = f"#{self.id} {self.dates()}"
        if self.yearly:
            said += ", yearly"
        if self.expect_percent is not None:
            said += (
                f", expect up to {self.expect_percent:g}% changes (confirmed by {self.expect_by})"
            )
        return said

    def state(self, now: datetime) -> str:
        return (
            "holding uploads now"
            if self.holds(now)
            else ("ended" if self.ends_at <= now else "to come")
        )

    def hold(self) -> TrippedThreshold:
        """How a held import records its window: as the rule that paused it (an approval
        covers the window's id, so approving applies it early)."""
        entity = (
            f"{self.dates()}: nothing is applied until it ends; on"
            f" {self.released_on.isoformat()} the newest upload held in it is checked"
            " against the roster and imported"
        )
        return TrippedThreshold("window", entity, self.id, 0, 0.0)


def time_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {name!r} (an IANA name: America/Chicago)") from None


def bounds(starts_on: date, ends_on: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The window's first moment and the moment after its last day, in UTC."""
    first = datetime.combine(starts_on, time(), zone)
    after = datetime.combine(ends_on + timedelta(days=1), time(), zone)
    return first.astimezone(UTC), after.astimezone(UTC)


def parse_day(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"{what}: {text!r} is not a date (YYYY-MM-DD)") from None


def check_window(
    starts_on: date, ends_on: date, today: date, note: str, expect_percent: float | None
) -> None:
    """A new window's own rules; raises ConfigError saying which is broken."""
    if ends_on < starts_on:
        raise ConfigError(f"the window ends ({ends_on}) before it starts ({starts_on})")
    if ends_on < today:
        raise ConfigError(f"the window ended already ({ends_on}; today is {today})")
    days = (ends_on - starts_on).days + 1
    if days > MAX_WINDOW_DAYS:
        raise ConfigError(f"a window lasts at most {MAX_WINDOW_DAYS} days, not {days}")
    if len(note) > MAX_NOTE_CHARS:
        raise ConfigError(f"a window's note has at most {MAX_NOTE_CHARS} characters")
    if expect_percent is not None and not 0 < expect_percent <= 100:
        raise ConfigError(
            f"the expected changes must be above 0 and at most 100 %, not {expect_percent:g}"
        )


def yearly_rule(text: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """`MM-DD..MM-DD` (a window every year, e.g. 06-15..08-10); raises ConfigError."""
    found = _RULE.match(text)
    if not found:
        raise ConfigError(f"a yearly window is MM-DD..MM-DD (06-15..08-10), not {text!r}")
    start = int(found[1]), int(found[2])
    end = int(found[3]), int(found[4])
    for month, day in (start, end):
        try:
            date(2000, month, day)  # a leap year: 02-29 is a day
        except ValueError:
            raise ConfigError(f"{text!r}: {month:02d}-{day:02d} is not a day of the year") from None
    return start, end


def next_occurrence(
    rule: tuple[tuple[int, int], tuple[int, int]], today: date
) -> tuple[date, date]:
    """The rule's first window that has not ended by `today` (one across New Year ends in
    the year after it starts)."""
    (start_month, start_day), (end_month, end_day) = rule
    for year in (today.year - 1, today.year, today.year + 1):
        starts_on = _day(year, start_month, start_day)
        wraps = (end_month, end_day) < (start_month, start_day)
        ends_on = _day(year + 1 if wraps else year, end_month, end_day)
        if ends_on >= today:
            return starts_on, ends_on
    raise AssertionError("a rule always has a window within two years")  # pragma: no cover


def next_year(window: PauseWindow) -> tuple[date, date]:
    """A yearly window's days one year on."""
    return _shifted(window.starts_on), _shifted(window.ends_on)


def _shifted(day: date) -> date:
    return _day(day.year + 1, day.month, day.day)


def _day(year: int, month: int, day: int) -> date:
    """The day, or 28 February for the 29th in a year without it."""
    if (month, day) == (2, 29):
        try:
            return date(year, 2, 29)
        except ValueError:
            return date(year, 2, 28)
    return date(year, month, day)


def holding(windows: list[PauseWindow], now: datetime) -> PauseWindow | None:
    """The window holding uploads now (of overlapping ones, the one that ends last)."""
    open_now = [w for w in windows if w.holds(now)]
    return max(open_now, key=lambda w: (w.ends_at, w.id)) if open_now else None


def expectation(windows: list[PauseWindow], now: datetime) -> PauseWindow | None:
    """The window whose one-time override applies now: the latest that ended with one not
    used yet; none while a window holds uploads."""
    if holding(windows, now) is not None:
        return None
    ended = [w for w in windows if w.expectation_open(now)]
    return max(ended, key=lambda w: (w.ends_at, w.id)) if ended else None


def expected_settings(settings: TenantSettings, window: PauseWindow | None) -> TenantSettings:
    """The thresholds of the first import after a window whose end expects big changes: its
    percentages raised to what the administrator confirmed (never lowered)."""
    if window is None or window.expect_percent is None:
        return settings
    percent = window.expect_percent
    return dataclasses.replace(
        settings,
        max_deactivate_percent=max(settings.max_deactivate_percent, percent),
        max_update_percent=max(settings.max_update_percent, percent),
    )
