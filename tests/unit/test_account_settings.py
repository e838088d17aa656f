"""The accounts' settings: read from the environment, each bound refused past its edge."""

from __future__ import annotations

import pytest

from daemon.config import MAX_API_TOKEN_DAYS, MAX_PASSWORD_LINK_HOURS, load_settings
from daemon.errors import ConfigError


def test_the_accounts_settings_come_from_the_environment() -> None:
    web = load_settings(
        None,
        {
            "ROSTERDROP_WEB_PASSWORD_LINK_HOURS": "2",
            "ROSTERDROP_WEB_REQUIRE_TOTP_FOR_OPERATORS": "true",
            "ROSTERDROP_WEB_API_TOKEN_DAYS": "30",
        },
    ).web
    assert (web.password_link_hours, web.require_totp_for_operators, web.api_token_days) == (
        2.0,
        True,
        30.0,
    )
    defaults = load_settings(None, {}).web
    assert (defaults.password_link_hours, defaults.require_totp_for_operators) == (48.0, False)
    assert defaults.api_token_days == 90.0


@pytest.mark.parametrize(
    ("variable", "most"),
    [
        ("ROSTERDROP_WEB_PASSWORD_LINK_HOURS", MAX_PASSWORD_LINK_HOURS),
        ("ROSTERDROP_WEB_API_TOKEN_DAYS", MAX_API_TOKEN_DAYS),
    ],
)
def test_a_lifetime_is_above_zero_and_at_most_its_bound(variable: str, most: float) -> None:
    assert load_settings(None, {variable: str(most)}).web is not None  # the edge itself
    for refused in ("0", str(most + 0.5), "-1"):
        with pytest.raises(ConfigError, match=variable.removeprefix("ROSTERDROP_WEB_").lower()):
            load_settings(None, {variable: refused})
