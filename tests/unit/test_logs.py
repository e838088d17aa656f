"""Log lines: JSON for journald and log shippers, readable lines for a person at a terminal."""

from __future__ import annotations

import io
import json

import pytest
import structlog

from daemon import logs

pytestmark = pytest.mark.usefixtures("own_logging")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_not_a_terminal_gets_one_json_object_per_line() -> None:
    out = io.StringIO()
    logs.configure("info", "auto", stream=out)
    structlog.get_logger("daemon.pipeline").info("import imported", tenant="acme", import_id=3)

    [line] = [json.loads(raw) for raw in out.getvalue().splitlines()]
    assert (line["event"], line["tenant"], line["import_id"]) == ("import imported", "acme", 3)
    assert (line["level"], line["logger"]) == ("info", "daemon.pipeline")
    assert line["timestamp"].endswith("Z")


def test_a_terminal_gets_readable_lines_and_the_level_holds() -> None:
    out = Terminal()
    logs.configure("warning", "auto", stream=out)
    log = structlog.get_logger("daemon.pipeline")
    log.info("import imported", tenant="acme")
    log.warning("import paused", tenant="acme", import_id=4)

    [line] = out.getvalue().splitlines()
    assert "import paused" in line
    assert "tenant=acme" in line
    assert "import_id=4" in line
    assert not line.startswith("{")
