"""Shared fixtures: settings in a temporary data directory, and both databases for real.

PostgreSQL runs from the machine's binaries (initdb into a temporary directory, a free port);
each test that asks for it gets a database of its own. Where the binaries are missing the
PostgreSQL half is skipped, except under `make test` (ROSTERDROP_REQUIRE_REAL_TOOLS=1, see
tests/support/real_tools.py), where that fails the test and the session.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog

from daemon.config import Settings, load_settings
from daemon.store.database import Database
from tests.support import postgres

pytest_plugins = ["tests.support.real_tools"]
_counter = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    if not postgres.available():
        from tests.support import real_tools  # imported as the plugin above, first

        real_tools.missing(f"PostgreSQL's initdb and pg_ctl in {postgres.PG_BIN}")
    with postgres.postgres_server(wait_for_removal=False) as url:
        yield url


@pytest.fixture(scope="session")
def postgres_template(postgres_server: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The name of a database migrated once, that each test's database is a copy of: a copy
    takes 0.1 s, the migrations 0.4-0.5 s more."""
    url = postgres.create_database(postgres_server, "rosterdrop_template")
    migrated(url, tmp_path_factory.mktemp("template-locks"))
    return "rosterdrop_template"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once, copied for each test (the migrations: 0.07 s each)."""
    directory = tmp_path_factory.mktemp("sqlite-template")
    migrated(f"sqlite:///{directory / 'rosterdrop.db'}", directory / "locks")
    return directory / "rosterdrop.db"


def migrated(url: str, lock_dir: Path) -> None:
    database = Database(url, lock_dir=lock_dir)
    database.upgrade()
    database.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of each kind, its schema made by the migrations as a first start
    makes it; empty for a test marked `empty_database` (of the migrations themselves)."""
    empty = request.node.get_closest_marker("empty_database") is not None
    if request.param == "sqlite":
        path = tmp_path / "rosterdrop.db"
        if not empty:
            shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    server: str = request.getfixturevalue("postgres_server")
    template = None if empty else request.getfixturevalue("postgres_template")
    return postgres.create_database(
        server, f"test_{os.getpid()}_{next(_counter)}", template=template
    )


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings for a test: a temporary data directory, quick timings, servers on port 0."""

    def make(database_url: str | None = None, **env: str) -> Settings:
        environ = {
            "ROSTERDROP_DATA_DIR": str(tmp_path / "data"),
            "ROSTERDROP_SFTP_HOST": "127.0.0.1",
            "ROSTERDROP_SFTP_PORT": "0",
            "ROSTERDROP_HTTP_PORT": "0",
            "ROSTERDROP_WEB_PORT": "0",
            "ROSTERDROP_SETTLE_SECONDS": "0.3",
            "ROSTERDROP_SPOOL_RESCAN_SECONDS": "0.5",
            **({"ROSTERDROP_DATABASE_URL": database_url} if database_url else {}),
            **env,
        }
        return load_settings(None, environ)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings.database_url, lock_dir=settings.paths.locks)
    database.upgrade()
    yield database
    database.close()


@pytest.fixture
def own_logging() -> Iterator[None]:
    """For a test that configures logging as a process does: undone for the other tests."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)
