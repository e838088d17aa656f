"""The schema's newest migration is the one the database layer expects."""

from __future__ import annotations

from alembic.config import Config
from alembic.script import ScriptDirectory

from daemon.store.database import HEAD_REVISION, MIGRATIONS_DIR


def test_head_revision_constant_matches_the_newest_migration() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION
