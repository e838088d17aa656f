"""The OpenAPI description of /api/v1 (openapi.yaml beside this module), served as JSON.

Served to everyone, signed in or not: it holds no data, only the contract, and clients read
it before they have a session or a token.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

DESCRIPTION = Path(__file__).with_name("openapi.yaml")
ROUTE = "/api/v1/openapi.json"


@functools.cache
def description() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DESCRIPTION.read_text(encoding="utf-8"))
    return loaded


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(description())
