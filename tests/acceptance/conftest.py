"""Fixtures for the acceptance tests: the real `rosterdrop` command as a subprocess."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from daemon.sftp import load_or_create_host_keys
from tests.support import postgres, real_tools
from tests.support.site import Site

_counter = itertools.count(1)


@pytest.fixture(scope="session")
def host_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Made once: an RSA host key takes a second to generate."""
    directory = tmp_path_factory.mktemp("hostkeys")
    load_or_create_host_keys(directory)
    return directory


@pytest.fixture
def make_site(tmp_path: Path, host_keys: Path) -> Iterator[Callable[..., Site]]:
    """A fresh installation in this test's directory; keyword arguments are ROSTERDROP_* values."""
    made: list[Site] = []

    def make(**env: str) -> Site:
        made.append(Site.create(tmp_path, host_keys, env))
        return made[-1]

    yield make
    for site in made:
        site.close()


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh database of its own on the session's PostgreSQL server."""
    return postgres.create_database(postgres_server, f"ops_{os.getpid()}_{next(_counter)}")


@pytest.fixture
def own_postgres() -> Iterator[postgres.Server]:
    """A PostgreSQL server for one test alone, which it may stop and start (mark the test
    `postgres`: it does not use the session's server)."""
    if not postgres.available():
        real_tools.missing(f"PostgreSQL's initdb and pg_ctl in {postgres.PG_BIN}")
    server = postgres.Server()
    try:
        server.start()
        yield server
    finally:
        server.remove()
