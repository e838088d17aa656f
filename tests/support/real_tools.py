"""The tests that need a real tool (PostgreSQL, systemd's checkers) may not skip unseen.

A developer's machine without PostgreSQL skips those tests; `make test` (and so CI) sets
ROSTERDROP_REQUIRE_REAL_TOOLS=1, and then a missing tool fails its test, and the session
fails when a test of such a marker was skipped or none of them ran at all.

A pytest plugin (registered by tests/conftest.py): every test that uses the `postgres_server`
fixture is marked `postgres`, whatever its module says.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import NoReturn

import pytest

REQUIRE_VARIABLE = "ROSTERDROP_REQUIRE_REAL_TOOLS"
# marker → what the tests of that marker need
REAL_TOOLS = {
    "postgres": "the PostgreSQL server binaries (ROSTERDROP_PG_BIN)",
    "systemd": "systemd-analyze, systemd-sysusers and systemd-tmpfiles",
}


def required() -> bool:
    return os.environ.get(REQUIRE_VARIABLE) == "1"


def missing(what: str) -> NoReturn:
    """A test's real tool is not on this machine: skip it, or fail where tools are required."""
    if required():
        pytest.fail(f"{REQUIRE_VARIABLE}=1, but {what} is missing", pytrace=False)
    pytest.skip(f"{what} is missing")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"systemd: needs {REAL_TOOLS['systemd']}")
    config.pluginmanager.register(_Tally(), "rosterdrop-real-tools")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "postgres_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


class _Tally:
    """How many tests of each marker ran and were skipped. Counted where the reports meet:
    in the controller under xdist, which sees every worker's."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for marker in REAL_TOOLS:
            if marker not in report.keywords:
                continue
            if report.skipped:
                self.counts[(marker, "skipped")] += 1
            elif report.when == "call":
                self.counts[(marker, "ran")] += 1

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not required() or hasattr(session.config, "workerinput"):
            return  # an xdist worker sees only its share; the controller judges the whole
        problems = []
        for marker, needs in REAL_TOOLS.items():
            if skipped := self.counts[(marker, "skipped")]:
                problems.append(f"{skipped} `{marker}` test(s) were skipped; they need {needs}")
            elif not self.counts[(marker, "ran")]:
                problems.append(f"no `{marker}` test ran; they need {needs}")
        if not problems:
            return
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        for problem in problems:
            if reporter is not None:
                reporter.write_line(f"{REQUIRE_VARIABLE}=1: {problem}", red=True, bold=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
