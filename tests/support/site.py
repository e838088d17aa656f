"""One rosterdrop installation for the acceptance tests: a data directory, a database, and the
environment that the daemon and the operator's commands share."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon.config import Settings, load_settings
from daemon.sftp import hash_password
from daemon.store import tenants
from daemon.store.database import Database
from daemon.store.roster import active_roster
from tests.support import drop
from tests.support.process import Daemon, cli, environment

PASSWORD = "correct-horse-battery-staple"

# Quick timings: sets settle in a blink, rescans come often, emails are retried within a test.
QUICK = {
    "ROSTERDROP_SFTP_HOST": "127.0.0.1",
    "ROSTERDROP_SFTP_PORT": "0",
    "ROSTERDROP_HTTP_PORT": "0",
    "ROSTERDROP_WEB_PORT": "0",
    "ROSTERDROP_SETTLE_SECONDS": "0.3",
    "ROSTERDROP_SPOOL_RESCAN_SECONDS": "0.3",
    "ROSTERDROP_SMTP_TIMEOUT": "5",
    "ROSTERDROP_SMTP_RETRY_INITIAL_SECONDS": "0.5",
    "ROSTERDROP_SMTP_RETRY_MAX_SECONDS": "1",
    "ROSTERDROP_SERVICE_SHUTDOWN_TIMEOUT": "10",
}


@dataclass
class Site:
    root: Path
    env: dict[str, str]
    _db: Database | None = None

    @classmethod
    def create(
        cls,
        root: Path,
        host_keys: Path,
        env: Mapping[str, str] | None = None,
        *,
        migrate: bool = True,
        quick: bool = True,
        **more: str,
    ) -> Site:
        """A data directory and a database, migrated unless `migrate` is false (then the
        database is left for `rosterdrop serve` to create); with QUICK timings unless `quick`
        is false (then only `env` and the defaults count)."""
        data = root / "data"
        shutil.copytree(host_keys, data / "hostkeys", dirs_exist_ok=True)
        values = {**(QUICK if quick else {}), "ROSTERDROP_DATA_DIR": str(data), **(env or {})}
        values.update(more)
        site = cls(root, values)
        if migrate:
            with site.db():
                pass  # as `rosterdrop serve` would before it listens
        return site

    def schema_version(self) -> str | None:
        """Where the database's schema is, read afresh, without migrating it."""
        settings = self.settings
        database = Database(settings.database_url, lock_dir=settings.paths.locks)
        try:
            return database.schema_version()
        finally:
            database.close()

    @property
    def settings(self) -> Settings:
        return load_settings(None, environment(self.env))

    @contextlib.contextmanager
    def db(self) -> Iterator[Database]:
        """The site's database, opened (and migrated) on first use; close() ends it."""
        if self._db is None:
            settings = self.settings
            self._db = Database(settings.database_url, lock_dir=settings.paths.locks)
            self._db.upgrade()
        yield self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def add_tenant(self, name: str, *emails: str) -> str:
        with self.db() as db, db.write() as conn:
            tenants.add(
                conn, name, emails=list(emails), now=datetime.now(UTC),
                password_hash=hash_password(PASSWORD),
            )  # fmt: skip
        self.settings.paths.upload_dir(name).mkdir(parents=True, exist_ok=True)
        return name

    def daemon(self, label: str = "serve", **more: str) -> Daemon:
        return Daemon({**self.env, **more}, self.root / f"{label}.log")

    def cli(self, *args: str, stdin: str | None = None) -> Any:
        return cli(self.env, *args, stdin=stdin)

    def roster(self, tenant: str) -> dict[str, list[dict[str, Any]]]:
        with self.db() as db, db.read() as conn:
            return active_roster(conn, tenants.get(conn, tenant).id)

    def imports(self, tenant: str | None = None) -> list[dict[str, Any]]:
        with self.db() as db:
            return drop.import_rows(db, tenant)

    def emails(self, kind: str | None = None) -> list[dict[str, Any]]:
        with self.db() as db:
            return drop.emails(db, kind)


def upload(port: int, tenant: str, files: Mapping[str, bytes]) -> None:
    drop.upload_set(port, tenant, PASSWORD, files)
