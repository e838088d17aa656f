"""The pause window rules at their edges (roster/windows.py): no database, no clock but
the one each test passes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from daemon.errors import ConfigError
from daemon.roster import windows as rules
from daemon.roster.tenant import TenantSettings
from daemon.roster.windows import ENDED, STARTS, PauseWindow

CHICAGO = ZoneInfo("America/Chicago")


def window(
    starts_on: date = date(2027, 6, 10), ends_on: date = date(2027, 8, 15), **more: object
) -> PauseWindow:
    starts_at, ends_at = rules.bounds(starts_on, ends_on, CHICAGO)
    return PauseWindow(1, 1, starts_on, ends_on, starts_at, ends_at, **more)  # type: ignore[arg-type]


def test_a_windows_days_are_counted_in_its_time_zone() -> None:
    summer = window()

    assert summer.starts_at == datetime(2027, 6, 10, 5, tzinfo=UTC)  # midnight, CDT
    assert summer.ends_at == datetime(2027, 8, 16, 5, tzinfo=UTC)
    assert summer.holds(summer.ends_at - timedelta(microseconds=1))
    assert not summer.holds(summer.ends_at)
    assert not summer.holds(summer.starts_at - timedelta(microseconds=1))


def test_notices_are_due_a_day_before_the_start_and_for_a_week_after_the_end() -> None:
    summer = window()
    lead, late = rules.NOTICE_LEAD, rules.LATE_NOTICE

    assert not summer.notice_due(STARTS, summer.starts_at - lead - timedelta(seconds=1))
    assert summer.notice_due(STARTS, summer.starts_at - lead)
    assert not summer.notice_due(STARTS, summer.ends_at)  # over: "starts tomorrow" is untrue
    assert not summer.notice_due(ENDED, summer.ends_at - timedelta(seconds=1))
    assert summer.notice_due(ENDED, summer.ends_at)
    assert summer.notice_due(ENDED, summer.ends_at + late - timedelta(seconds=1))
    assert not summer.notice_due(ENDED, summer.ends_at + late)


def test_the_override_opens_at_the_end_for_thirty_days_until_used() -> None:
    summer = window(expect_percent=60.0, expect_by="registrar")
    end = summer.ends_at

    assert rules.expectation([summer], end - timedelta(seconds=1)) is None  # it still holds
    assert rules.expectation([summer], end) == summer
    assert rules.expectation([summer], end + rules.EXPECT_VALID - timedelta(seconds=1)) == summer
    assert rules.expectation([summer], end + rules.EXPECT_VALID) is None
    used = window(expect_percent=60.0, expect_import_id=7)
    assert rules.expectation([used], end) is None


def test_the_override_raises_the_percentages_and_never_lowers_them() -> None:
    settings = TenantSettings(max_deactivate_percent=10, max_update_percent=75)

    raised = rules.expected_settings(settings, window(expect_percent=60.0))

    assert (raised.max_deactivate_percent, raised.max_update_percent) == (60, 75)
    assert raised.max_row_errors == settings.max_row_errors  # row errors are not changes
    assert rules.expected_settings(settings, window()) == settings


def test_of_overlapping_windows_the_one_ending_last_holds() -> None:
    early, late = window(ends_on=date(2027, 7, 1)), window(ends_on=date(2027, 8, 1))
    now = early.starts_at + timedelta(days=3)

    assert rules.holding([early, late], now) == late
    assert rules.holding([early, late], late.ends_at) is None


@pytest.mark.parametrize(
    ("rule", "today", "expected"),
    [
        ("06-15..08-10", date(2027, 5, 3), (date(2027, 6, 15), date(2027, 8, 10))),
        ("06-15..08-10", date(2027, 8, 10), (date(2027, 6, 15), date(2027, 8, 10))),
        ("06-15..08-10", date(2027, 8, 11), (date(2028, 6, 15), date(2028, 8, 10))),
        ("12-20..01-05", date(2028, 1, 2), (date(2027, 12, 20), date(2028, 1, 5))),  # New Year
        ("02-29..03-01", date(2027, 1, 1), (date(2027, 2, 28), date(2027, 3, 1))),
    ],
)
def test_a_yearly_rules_next_window(rule: str, today: date, expected: tuple[date, date]) -> None:
    assert rules.next_occurrence(rules.yearly_rule(rule), today) == expected


@pytest.mark.parametrize(
    "rule", ["June 15 - August 10", "06-15-08-10", "13-01..08-10", "02-30..03-01"]
)
def test_a_bad_yearly_rule_is_named(rule: str) -> None:
    with pytest.raises(ConfigError, match=r"MM-DD|not a day of the year"):
        rules.yearly_rule(rule)


def test_a_yearly_window_moves_one_year_on_keeping_its_days() -> None:
    leap = window(date(2028, 2, 29), date(2028, 3, 10))

    assert rules.next_year(leap) == (date(2029, 2, 28), date(2029, 3, 10))
    assert rules.next_year(window()) == (date(2028, 6, 10), date(2028, 8, 15))


def test_a_note_and_the_expected_changes_are_bounded() -> None:
    today = date(2027, 5, 1)
    day = date(2027, 6, 1)
    rules.check_window(day, day, today, "n" * rules.MAX_NOTE_CHARS, 100.0)
    with pytest.raises(ConfigError, match="at most 200 characters"):
        rules.check_window(day, day, today, "n" * (rules.MAX_NOTE_CHARS + 1), None)
    with pytest.raises(ConfigError, match="above 0 and at most 100"):
        rules.check_window(day, day, today, "", 0.0)
