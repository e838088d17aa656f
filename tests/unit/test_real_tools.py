"""`make test` cannot pass with PostgreSQL (or systemd's tools) quietly missing."""

from __future__ import annotations

import pytest

from tests.support.real_tools import REQUIRE_VARIABLE

pytest_plugins = ["pytester"]

SUITE = """
import pytest

@pytest.fixture(scope="session")
def postgres_server():
    {postgres}
    return "postgresql://"

def test_roster_on_postgres(postgres_server):
    pass

@pytest.mark.systemd
def test_unit_file():
    {systemd}
"""


def run(pytester: pytest.Pytester, *, postgres: str = "pass", systemd: str = "pass") -> int:
    pytester.makepyfile(SUITE.format(postgres=postgres, systemd=systemd))
    return int(session(pytester).ret)


def session(pytester: pytest.Pytester) -> pytest.RunResult:
    """A pytest session with the plugin, in this process (it is imported already)."""
    pytester.makeconftest("from tests.support.real_tools import *  # noqa: F403")
    return pytester.runpytest("-p", "no:cacheprovider", "-p", "no:asyncio")


@pytest.fixture
def required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_VARIABLE, "1")


@pytest.mark.usefixtures("required")
def test_a_session_with_every_real_tool_passes(pytester: pytest.Pytester) -> None:
    assert run(pytester) == pytest.ExitCode.OK


@pytest.mark.usefixtures("required")
def test_a_skipped_postgres_test_fails_the_session(pytester: pytest.Pytester) -> None:
    # The test's own module does not mark it: using the server's fixture is what counts.
    assert run(pytester, postgres="pytest.skip('no initdb')") == pytest.ExitCode.TESTS_FAILED


@pytest.mark.usefixtures("required")
def test_a_skipped_systemd_test_fails_the_session(pytester: pytest.Pytester) -> None:
    assert run(pytester, systemd="pytest.skip('no systemd-analyze')") == 1


@pytest.mark.usefixtures("required")
def test_a_session_where_no_postgres_test_ran_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_only_sqlite():\n    pass\n")
    result = session(pytester)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*no `postgres` test ran*", "*no `systemd` test ran*"])


def test_without_the_flag_a_developer_may_skip_them(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(REQUIRE_VARIABLE, raising=False)
    assert run(pytester, postgres="pytest.skip('no initdb')") == pytest.ExitCode.OK
