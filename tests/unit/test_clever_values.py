"""Field values: CEDS grades and replace rules, term dates, email syntax, text cleanup."""

from __future__ import annotations

from datetime import date

import pytest

from daemon.clever.values import (
    GradeRules,
    clean_text,
    parse_date,
    valid_email,
)
from daemon.errors import ConfigError
from daemon.roster.grades import CEDS_GRADES
from daemon.roster.tenant import TenantSettings

COMMON = GradeRules({}, use_common=True)


@pytest.mark.parametrize("code", CEDS_GRADES)
def test_ceds_codes_pass_as_they_are(code: str) -> None:
    assert GradeRules({}, use_common=False).normalise(code) == code


@pytest.mark.parametrize(
    ("spelling", "code"),
    [
        ("K", "KG"),
        ("k", "KG"),
        ("Kindergarten", "KG"),
        ("0", "KG"),
        ("1", "01"),
        ("9", "09"),
        ("12", "12"),
        ("1st", "01"),
        ("3rd Grade", "03"),
        ("Grade 11", "11"),
        ("PreK", "PK"),
        ("Pre-K", "PK"),
        ("TK", "TK"),
        ("kg", "KG"),
        ("other", "Other"),
        ("Ungraded", "UG"),
    ],
)
def test_the_common_spellings_map_to_ceds(spelling: str, code: str) -> None:
    assert COMMON.normalise(spelling) == code


@pytest.mark.parametrize("value", ["Z9", "14", "Grade 14", "K-5", "1.0"])
def test_other_values_map_to_nothing(value: str) -> None:
    assert COMMON.normalise(value) is None


def test_without_the_common_rules_only_ceds_and_the_tenants_rules_apply() -> None:
    rules = GradeRules({"K5": "KG", " Grade One ": "01"}, use_common=False)

    assert rules.normalise("K") is None
    assert rules.normalise("k5") == "KG"
    assert rules.normalise("grade one") == "01"
    assert rules.normalise("KG") == "KG"


def test_a_tenants_rule_overrides_a_common_one() -> None:
    assert GradeRules({"P": "PR"}, use_common=True).normalise("p") == "PR"


def test_a_grade_rule_must_lead_to_a_ceds_code() -> None:
    with pytest.raises(ConfigError, match="'K' is not a CEDS grade code"):
        TenantSettings().updated(grade_rules={"K5": "K"})
    assert TenantSettings().updated(grade_rules={"K5": "kg"}).grade_rules == {"K5": "kg"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-08-15", date(2026, 8, 15)),
        ("08/15/2026", date(2026, 8, 15)),
        ("8/5/2026", date(2026, 8, 5)),
        ("20260815", date(2026, 8, 15)),
        ("2024-02-29", date(2024, 2, 29)),
        ("2026-02-29", None),
        ("2026-13-01", None),
        ("15/08/2026", None),  # day first is not one of the accepted formats
        ("2026/08/15", None),
        ("Aug 15 2026", None),
        ("", None),
    ],
)
def test_term_dates_in_the_formats_seen_in_the_wild(value: str, expected: date | None) -> None:
    assert parse_date(value) == expected


@pytest.mark.parametrize(
    "address",
    [
        "ann@district.org",
        "First.Last+tag@school.k12.ca.us",
        "o'brien@district.org",
        "josé@école.fr",
        "ü@dömain.de",
    ],
)
def test_valid_emails(address: str) -> None:
    assert valid_email(address)


@pytest.mark.parametrize(
    "address",
    [
        "plain",
        "two@@district.org",
        "no-domain@",
        "@no-local.org",
        "user@localhost",
        "a@b.c",
        "space in@district.org",
        "user@-bad-.org",
        "user@district.org.",
        "x" * 250 + "@d.org",
    ],
)
def test_invalid_emails(address: str) -> None:
    assert not valid_email(address)


def test_line_breaks_and_tabs_inside_a_value_become_single_spaces() -> None:
    assert clean_text("Mary\r\nAnn") == "Mary Ann"
    assert clean_text(" Tab\t\tthere ") == "Tab there"
