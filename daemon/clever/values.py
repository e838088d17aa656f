"""Field values: CEDS grade codes and replace rules, term dates, email addresses, text cleanup."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date

from daemon.errors import ConfigError
from daemon.roster.grades import CEDS_GRADES

_CANONICAL = {code.lower(): code for code in CEDS_GRADES}


def _common_grade_rules() -> dict[str, str]:
    """The spellings SIS exports use most, mapped to CEDS codes (keys lower-case)."""
    rules = {
        spelling: "KG"
        for spelling in ("k", "kg", "kn", "kinder", "kindergarten", "kindergarden", "0", "00")
    }
    rules.update(
        dict.fromkeys(
            ("prek", "pre-k", "pre k", "pk", "pre-kindergarten", "prekindergarten", "-1", "p"),
            "PK",
        )
    )
    rules.update(
        dict.fromkeys(("tk", "transitional kindergarten", "transitionalkindergarten"), "TK")
    )
    rules.update(dict.fromkeys(("preschool", "pre-school", "ps3", "ps4"), "PR"))
    rules.update(
        dict.fromkeys(
            ("infant", "toddler", "infant/toddler", "infanttoddler", "infant toddler"), "IT"
        )
    )
    rules.update(dict.fromkeys(("ungraded", "ug", "u"), "UG"))
    # Clever's own spelling for students past grade 12; CEDS calls them postsecondary.
    rules.update(dict.fromkeys(("postgraduate", "post graduate", "post-graduate"), "PS"))
    suffixes = {1: "st", 2: "nd", 3: "rd"}
    for n in range(1, 14):
        code = f"{n:02d}"
        ordinal = f"{n}{suffixes.get(n if n < 4 else 0, 'th')}"
        for spelling in (str(n), code, ordinal, f"grade {n}", f"{ordinal} grade"):
            rules[spelling] = code
    return rules


COMMON_GRADE_RULES: Mapping[str, str] = _common_grade_rules()


class GradeRules:
    """A tenant's replace rules on top of (optionally) the common ones; exact CEDS codes pass."""

    def __init__(self, custom: Mapping[str, str], *, use_common: bool) -> None:
        rules: dict[str, str] = dict(COMMON_GRADE_RULES) if use_common else {}
        rules.update({k.strip().lower(): v.strip() for k, v in custom.items()})
        self._rules = rules

    def normalise(self, value: str) -> str | None:
        """The CEDS code for `value`, or None when no rule makes it one."""
        if value in CEDS_GRADES:
            return value
        replaced = self._rules.get(value.lower())
        if replaced is not None:
            return _CANONICAL.get(replaced.lower())
        return _CANONICAL.get(value.lower())


# Excel turns a grade range typed as "6-8" into a date and shows it as "8-Jun".
_EXCEL_DATE = re.compile(r"\d{1,2}-[A-Za-z]{3}|[A-Za-z]{3}-\d{1,2}")


def grade_hint(value: str) -> str:
    """Why a grade value is not a grade, when we can tell."""
    if _EXCEL_DATE.fullmatch(value.strip()):
        return (
            "; it looks like a spreadsheet turned a grade range into a date: format the column"
            " as text before saving"
        )
    return ""


_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_US = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})")
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
# Two-digit years as Clever's own sample district writes them (8/1/15): 00-69 are 2000-2069,
# 70-99 are 1970-1999, as POSIX strptime's %y reads them.
TWO_DIGIT_YEAR_PIVOT = 70
DATE_FORMATS = "YYYY-MM-DD, M/D/YYYY, M/D/YY or YYYYMMDD"


def parse_date(value: str) -> date | None:
    """YYYY-M-D, M/D/YYYY, M/D/YY or YYYYMMDD; None when it is none of them or no real day."""
    try:
        if m := _ISO.fullmatch(value):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if m := _US.fullmatch(value):
            year = int(m[3])
            if len(m[3]) == 2:
                year += 1900 if year >= TWO_DIGIT_YEAR_PIVOT else 2000
            return date(year, int(m[1]), int(m[2]))
        if m := _COMPACT.fullmatch(value):
            return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None
    return None


_LOCAL = r"[^\s@\"(),:;<>\[\\\]]+"
_EMAIL = re.compile(_LOCAL + r"@(?:[^\W_](?:(?:[^\W_]|-){0,61}[^\W_])?\.)+[^\W\d_]{2,63}")
# The same rule spelled in ASCII classes: four times faster, and most addresses are ASCII.
_ASCII_EMAIL = re.compile(
    _LOCAL + r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
MAX_EMAIL = 254


def email_list(*, optional: bool, ascii_only: bool) -> re.Pattern[str]:
    """A pattern for many addresses joined by newlines, to check a whole column in one go."""
    one = (_ASCII_EMAIL if ascii_only else _EMAIL).pattern
    item = f"(?:{one})?" if optional else one
    return re.compile(f"{item}(?:\n{item})*")


def valid_email(value: str) -> bool:
    """Syntax only (no DNS): one @, no spaces, a dotted domain with a real top-level label."""
    if len(value) > MAX_EMAIL:
        return False
    pattern = _ASCII_EMAIL if value.isascii() else _EMAIL
    return pattern.fullmatch(value) is not None


def checked_emails(emails: Sequence[str]) -> list[str]:
    """A tenant's notification addresses, lower-cased; a ConfigError names the bad ones."""
    bad = [e for e in emails if not valid_email(e)]
    if bad:
        raise ConfigError(f"not an email address: {', '.join(bad)}")
    return [e.lower() for e in emails]


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def clean_text(value: str) -> str:
    """Collapse control characters (CR/LF inside quoted names, tabs) into single spaces."""
    return _CONTROL.sub(" ", value).strip()


def has_control(value: str) -> bool:
    return _CONTROL.search(value) is not None


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORDS = re.compile(r"[^a-z0-9]+")


def is_secret(column: str, words: tuple[str, ...]) -> bool:
    """Whether a column's name says it holds a secret. Long words (5 letters or more:
    `password`, `passcode`, `secret`) match anywhere in it (`StudentPassword`, `Password1`,
    `passwords`); short ones (`pwd`, `pin`) only as a word of it, split at `_`, `-`, spaces,
    digits and camelCase (`PIN code`, `student_pwd`, but not `shipping` or `spinner`)."""
    name = _CAMEL.sub(" ", column).lower()
    parts = set(_WORDS.split(re.sub(r"\d+", " ", name)))
    squashed = _WORDS.sub("", name)
    return any(word in squashed if len(word) >= 5 else word in parts for word in words)
