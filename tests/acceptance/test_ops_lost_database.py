"""The SQLite database deleted or replaced under a running `rosterdrop serve`: the daemon says it
is not ready (and why, in its log) instead of working on in a ghost of the old file or a new
empty one, and no command creates an empty database in a data directory that had one."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.errors import StoreError
from daemon.store.database import Database
from tests.support.process import Daemon, wait_until
from tests.support.site import Site


def readiness(daemon: Daemon) -> tuple[int, dict[str, object]]:
    status, body = daemon.get("/readyz")
    return status, json.loads(body)


def remove_database(file: Path) -> None:
    for path in (file, Path(f"{file}-wal"), Path(f"{file}-shm")):
        path.unlink(missing_ok=True)


@pytest.fixture
def site(make_site: Callable[..., Site]) -> Site:
    site = make_site()
    site.add_tenant("acme", "admin@acme.example.org")
    site.close()  # the test's own connection must not keep the old file alive
    return site


def test_a_deleted_database_makes_the_daemon_not_ready_and_is_never_recreated(
    site: Site,
) -> None:
    file = Path(site.settings.database_url.removeprefix("sqlite:///"))
    with site.daemon() as daemon:
        daemon.ready()
        assert readiness(daemon)[0] == 200
        remove_database(file)
        status, body = readiness(daemon)
        assert (status, body["checks"]) == (503, {"sftp": True, "database": False})
        [lost] = daemon.find("database file lost")
        assert (lost["path"], lost["what"]) == (str(file), "deleted")

        listed = site.cli("imports", "list")
        assert listed.returncode == 2
        assert f"the database {file} is missing" in listed.stderr
        assert not file.exists()  # neither the daemon nor the command made an empty one
        assert daemon.stop() == 0
    assert not file.exists()


def test_a_replaced_database_makes_the_daemon_not_ready(site: Site) -> None:
    file = Path(site.settings.database_url.removeprefix("sqlite:///"))
    with site.daemon() as daemon:
        daemon.ready()
        # Same bytes, another file, put in place at once (as `mv backup.db rosterdrop.db`):
        # the path never stops naming a file.
        shutil.copy(file, file.with_name("restored.db"))
        os.replace(file.with_name("restored.db"), file)
        wait_until(lambda: readiness(daemon)[0] == 503, 10, "the daemon to notice")
        [lost] = daemon.find("database file lost")
        assert lost["what"] == "replaced by another file"
        assert daemon.stop() == 0


def test_a_brand_new_database_is_announced(tmp_path: Path) -> None:
    site = Site(tmp_path, {"ROSTERDROP_DATA_DIR": str(tmp_path / "fresh")})
    result = site.cli("tenant", "list")
    assert result.returncode == 0, result.stderr
    assert f"creating a new database at {tmp_path / 'fresh' / 'rosterdrop.db'}" in result.stderr
    again = site.cli("tenant", "list")
    assert "creating" not in again.stderr


def test_an_import_process_refuses_a_file_that_is_not_the_daemons(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rosterdrop.db'}"
    daemons = Database(url)
    daemons.upgrade()
    opened = daemons.identity
    daemons.close()
    assert Database(url, create=False, expect=opened).identity == opened
    os.replace(
        shutil.copy(tmp_path / "rosterdrop.db", tmp_path / "restored.db"),
        tmp_path / "rosterdrop.db",
    )
    with pytest.raises(StoreError, match="not the file the daemon opened"):
        Database(url, create=False, expect=opened)
    (tmp_path / "rosterdrop.db").unlink()
    with pytest.raises(StoreError, match="does not exist"):
        Database(url, create=False)
    assert not (tmp_path / "rosterdrop.db").exists()
