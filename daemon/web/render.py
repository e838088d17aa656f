"""HTML pages from Jinja2 templates, every value escaped (CSV values are untrusted)."""

from __future__ import annotations

from typing import Any

import jinja2
from aiohttp import web

from daemon.notify.figures import when
from daemon.roster.outcome import format_label


class Templates:
    def __init__(self) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("daemon.web", "templates"),
            autoescape=True,  # every template, whatever its name
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["when"] = when
        self.env.filters["label"] = lambda state: str(state).replace("_", " ")
        self.env.filters["format_label"] = format_label

    def page(self, name: str, status: int = 200, **values: Any) -> web.Response:
        html = self.env.get_template(name).render(**values)
        return web.Response(text=html, status=status, content_type="text/html")
