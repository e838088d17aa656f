"""What every command works with: the settings loaded once, and the database opened (and
migrated) on first use, never created silently where one was lost."""

from __future__ import annotations

import click

from daemon.config import Settings
from daemon.errors import ConfigError
from daemon.pipeline import Pipeline
from daemon.store.database import Database, sqlite_file

# Written in the data directory beside the SQLite database it creates: a data directory that
# had a database never gets a new empty one silently.
DATABASE_MARKER = "database.created"


class App:
    """Settings loaded once, and the database opened (and migrated) on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._db: Database | None = None

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = open_database(self.settings)
        return self._db

    def pipeline(self) -> Pipeline:
        return Pipeline(self.db, self.settings.paths, self.settings.smtp)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


def open_database(settings: Settings) -> Database:
    """The database, migrated. A SQLite file is created only in a data directory that never had
    one, and the command says where; a lost one is an error, never replaced by an empty one."""
    paths = settings.paths
    file = sqlite_file(settings.database_url)
    marker = paths.root / DATABASE_MARKER
    creating = file is not None and not file.exists()
    if creating:
        had = marker.is_file() and marker.read_text(encoding="utf-8").strip() == str(file)
        if had or any(paths.tenants.glob("*/upload")):
            raise ConfigError(
                f"the database {file} is missing, but the data directory {paths.root} had one"
                " (deleted or moved?): restore it from a backup, or name the right data"
                " directory (--config, ROSTERDROP_CONFIG, ROSTERDROP_DATA_DIR)"
            )
        click.echo(f"rosterdrop: creating a new database at {file}", err=True)
    db = Database(settings.database_url, lock_dir=paths.locks)
    db.upgrade()
    if creating:  # only then: an open must not need a byte of disk space
        paths.root.mkdir(parents=True, exist_ok=True)
        marker.write_text(f"{file}\n", encoding="utf-8")
    return db
