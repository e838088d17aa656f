"""A tenant's import settings: thresholds, grade replace rules, encoding and column policy."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from daemon.errors import ConfigError
from daemon.roster.grades import CEDS_GRADES

DEFAULT_MAX_DEACTIVATE_PERCENT = 10.0
DEFAULT_MAX_UPDATE_PERCENT = 75.0
DEFAULT_THRESHOLD_FLOOR = 5
DEFAULT_MAX_ROW_ERRORS = 0
DEFAULT_PER_SCHOOL = True
DEFAULT_FALLBACK_ENCODING = "windows-1252"
# Words that mark a column as holding a secret (full Clever exports carry plain-text
# passwords): such a column is never read, stored or reported.
DEFAULT_SECRET_COLUMNS = ("password", "passwd", "pwd", "pin", "passcode", "secret")
# The upload's format (docs/oneroster.md): told from the files, or fixed per tenant.
AUTO, CLEVER, ONEROSTER = "auto", "clever", "oneroster"
INPUT_FORMATS = (AUTO, CLEVER, ONEROSTER)


@dataclass(frozen=True)
class TenantSettings:
    max_deactivate_percent: float = DEFAULT_MAX_DEACTIVATE_PERCENT
    max_update_percent: float = DEFAULT_MAX_UPDATE_PERCENT
    # Changes below this many rows never trip a percentage threshold (tiny schools).
    threshold_floor: int = DEFAULT_THRESHOLD_FLOOR
    max_row_errors: int = DEFAULT_MAX_ROW_ERRORS
    # The deactivation threshold also counted school by school (same limit and floor): one
    # small school lost whole stays under a large district's percentage.
    per_school: bool = DEFAULT_PER_SCHOOL
    common_grade_rules: bool = True
    grade_rules: Mapping[str, str] = field(default_factory=dict)
    # A file that is not UTF-8 is decoded with this (and a warning), or fails when "".
    fallback_encoding: str = DEFAULT_FALLBACK_ENCODING
    keep_extra_columns: bool = True
    secret_columns: tuple[str, ...] = DEFAULT_SECRET_COLUMNS
    input_format: str = AUTO

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["grade_rules"] = dict(self.grade_rules)
        data["secret_columns"] = list(self.secret_columns)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TenantSettings:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown tenant setting(s): {', '.join(sorted(unknown))}")
        if "secret_columns" in data:
            data = {**data, "secret_columns": tuple(data["secret_columns"])}
        return cls(**data)

    def updated(self, **changes: Any) -> TenantSettings:
        settings = dataclasses.replace(self, **changes)
        settings.check()
        return settings

    def check(self) -> None:
        for name in ("max_deactivate_percent", "max_update_percent"):
            value = getattr(self, name)
            if not 0 <= value <= 100:
                raise ConfigError(f"{name} must be between 0 and 100, not {value}")
        for name in ("threshold_floor", "max_row_errors"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative")
        self._check_grade_rules()
        if self.input_format not in INPUT_FORMATS:
            raise ConfigError(
                f"input format {self.input_format!r}: use one of {', '.join(INPUT_FORMATS)}"
            )
        for word in self.secret_columns:
            if not word.isalnum() or word != word.lower():
                raise ConfigError(
                    f"secret column word {word!r}: use one lower-case word (letters, digits)"
                )
        if self.fallback_encoding:
            import codecs

            try:
                codecs.lookup(self.fallback_encoding)
            except LookupError:
                raise ConfigError(f"unknown encoding {self.fallback_encoding!r}") from None

    def _check_grade_rules(self) -> None:
        """A rule must lead to a CEDS code: one that does not would turn every row it matches
        into a bad_grade warning saying that no rule maps the value."""
        codes = {code.lower() for code in CEDS_GRADES}
        for source, target in self.grade_rules.items():
            if not source.strip():
                raise ConfigError("a grade rule needs a value to replace")
            if target.strip().lower() not in codes:
                raise ConfigError(
                    f"grade rule {source!r} → {target!r}: {target!r} is not a CEDS grade code"
                    f" ({', '.join(CEDS_GRADES)})"
                )


def grade_rule(text: str) -> tuple[str, str]:
    """One `FROM=TO` replace rule, as `tenant set --grade-rule` and the Setup page take it;
    TenantSettings.check then sees that TO is a CEDS code."""
    source, sep, target = text.partition("=")
    if not sep or not source.strip() or not target.strip():
        raise ConfigError(f"grade-rule wants FROM=TO, not {text!r}")
    return source.strip(), target.strip()
