"""Field values: CEDS grades and replace rules, term dates, email syntax, text cleanup."""

from __future__ import annotations

from datetime import date

import pytest

from daemon.clever.values import (
    GradeRules,
    clean_text,
    grade_hint,
    is_secret,
    parse_date,
    valid_email,
)
from daemon.errors import ConfigError
from daemon.roster.grades import CEDS_GRADES
from daemon.roster.tenant import DEFAULT_SECRET_COLUMNS, TenantSettings

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
        # Clever's own spellings, in any case
        ("InfantToddler", "IT"),
        ("Preschool", "PR"),
        ("PreKindergarten", "PK"),
        ("Prekindergarten", "PK"),
        ("TransitionalKindergarten", "TK"),
        ("KINDERGARTEN", "KG"),
        ("13", "13"),
        ("PostGraduate", "PS"),
        ("Postgraduate", "PS"),
        ("OTHER", "Other"),
    ],
)
def test_the_common_spellings_map_to_ceds(spelling: str, code: str) -> None:
    assert COMMON.normalise(spelling) == code


@pytest.mark.parametrize("value", ["Z9", "14", "Grade 14", "K-5", "1.0", "8-Jun", "Sep-12"])
def test_other_values_map_to_nothing(value: str) -> None:
    assert COMMON.normalise(value) is None


@pytest.mark.parametrize(("value", "hinted"), [("8-Jun", True), ("12-Sep", True), ("Jun-8", True)])
def test_a_grade_range_excel_turned_into_a_date_says_so(value: str, hinted: bool) -> None:
    assert ("turned a grade range into a date" in grade_hint(value)) is hinted
    assert grade_hint("Z9") == ""


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
        # Clever's sample district: M/D/YY, the pivot at 70 as POSIX %y has it
        ("8/1/15", date(2015, 8, 1)),
        ("6/1/16", date(2016, 6, 1)),
        ("12/31/69", date(2069, 12, 31)),
        ("1/1/70", date(1970, 1, 1)),
        ("01/02/00", date(2000, 1, 2)),
        ("2026-8-1", date(2026, 8, 1)),
        ("2/30/16", None),
        ("8/1/015", None),
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


@pytest.mark.parametrize(
    ("column", "secret"),
    [
        ("Password", True),
        ("student_password", True),
        ("PWD", True),
        ("PIN", True),
        ("pin code", True),
        ("Teacher-Passcode", True),
        ("StudentPassword", True),
        ("Password1", True),
        ("PasswordHash", True),
        ("PinCode", True),
        ("shipping", False),
        ("spinner", False),
        ("passed", False),
        ("username", False),
    ],
)
def test_a_column_named_like_a_secret_is_recognised_by_its_words(column: str, secret: bool) -> None:
    assert is_secret(column, DEFAULT_SECRET_COLUMNS) is secret


def test_the_secret_words_are_a_tenant_setting() -> None:
    settings = TenantSettings.from_dict({"secret_columns": ["password", "ssn"]})
    assert is_secret("Student_SSN", settings.secret_columns)
    assert not is_secret("pin", settings.secret_columns)
    assert TenantSettings.from_dict(settings.as_dict()) == settings
    with pytest.raises(ConfigError, match="one lower-case word"):
        TenantSettings().updated(secret_columns=("social security",))


def test_line_breaks_and_tabs_inside_a_value_become_single_spaces() -> None:
    assert clean_text("Mary\r\nAnn") == "Mary Ann"
    assert clean_text(" Tab\t\tthere ") == "Tab there"
