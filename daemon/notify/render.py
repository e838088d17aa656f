"""Jinja2 templates of the emails: HTML autoescaped, every value stripped of control characters."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import jinja2
from markupsafe import Markup

# C0/C1 controls (CR and LF among them), line and paragraph separators, and the bidirectional
# overrides that can make text read differently from what it is ("Trojan Source").
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
REPLACEMENT = "\ufffd"


def neutralise(value: str) -> str:
    """One line of plain text: a value from a CSV can break no line and move no cursor."""
    return _UNSAFE.sub(REPLACEMENT, value)


def _finalize(value: Any) -> Any:
    # Runs on every {{ expression }} (before autoescaping, or after an explicit |e); the
    # templates' own text is not touched, so only values lose their control characters.
    if isinstance(value, Markup):
        return Markup(neutralise(str(value)))  # noqa: S704 - already escaped, only chars replaced
    if isinstance(value, str):
        return neutralise(value)
    return value


def _number(value: int) -> str:
    return f"{value:,}"


_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("daemon.notify", "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
    undefined=jinja2.StrictUndefined,
    finalize=_finalize,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_ENV.filters["number"] = _number


def compile_templates() -> None:
    """Compile every template now, so that processes forked from this one start with them."""
    for name in _ENV.list_templates():
        _ENV.get_template(name)


def render(name: str, context: Mapping[str, Any]) -> tuple[str, str]:
    """The plain-text and the HTML body of the email `name`."""
    text = _ENV.get_template(f"{name}.txt.j2").render(context)
    html = _ENV.get_template(f"{name}.html.j2").render(context)
    return text, html
