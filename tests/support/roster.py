"""Running real imports in tests: tenants, the pipeline, and reading a roster back."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings

from daemon.clever.files import find_files
from daemon.config import Settings
from daemon.pipeline import Pipeline
from daemon.roster.entities import ENTITIES
from daemon.roster.outcome import ImportReport
from daemon.roster.tenant import TenantSettings
from daemon.store import tenants
from daemon.store.database import MIGRATIONS_DIR, Database
from daemon.store.roster import active_roster
from daemon.store.tables import roster_tables
from daemon.store.tenants import Tenant

# Thresholds that never pause: for tests about what an import does, not whether it may.
NEVER_PAUSE = TenantSettings(max_deactivate_percent=100, max_update_percent=100)


def add_tenant(db: Database, name: str, settings: TenantSettings | None = None) -> Tenant:
    with db.write() as conn:
        return tenants.add(
            conn, name, emails=["admin@district.example.org"], now=datetime.now(UTC),
            settings=settings,
        )  # fmt: skip


def set_tenant(db: Database, name: str, **changes: Any) -> Tenant:
    with db.write() as conn:
        tenant = tenants.get(conn, name)
        return tenants.update(conn, name, settings=tenant.settings.updated(**changes))


def pipeline_for(db: Database, settings: Settings) -> Pipeline:
    return Pipeline(db, settings.paths, settings.smtp)


def run_import(pipeline: Pipeline, tenant: str, folder: Path) -> ImportReport:
    """What `rosterdrop import FOLDER --tenant NAME` does: claim a copy, run it."""
    with pipeline.db.read() as conn:
        owner = tenants.get(conn, tenant)
    import_id = pipeline.receive(owner, find_files(folder), source="cli", move=False)
    return pipeline.run(import_id)


def roster(db: Database, tenant: str) -> dict[str, list[dict[str, Any]]]:
    """What `rosterdrop roster show --tenant NAME --json` prints."""
    with db.read() as conn:
        return active_roster(conn, tenants.get(conn, tenant).id)


def counts(report: ImportReport) -> dict[str, dict[str, int]]:
    """Per entity: the counts a person is shown (field changes left out)."""
    keys = ("active_before", "added", "updated", "reactivated", "deactivated", "unchanged", "held")
    return {
        name: {k: getattr(changes, k) for k in keys} for name, changes in report.entities.items()
    }


def tables(db: Database, tenant: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every roster row of the tenant, active or not, with its bookkeeping columns."""
    with db.read() as conn:
        tenant_id = tenants.get(conn, tenant).id
        out = {}
        for entity in ENTITIES:
            table = roster_tables[entity.name]
            query = (
                sa.select(table)
                .where(table.c.tenant_id == tenant_id)
                .order_by(*(table.c[k] for k in entity.key))
            )
            out[entity.name] = [tuple(row) for row in conn.execute(query)]
        return out


ROSTERDROP = Path(sys.executable).with_name("rosterdrop")


def rosterdrop_env(settings: Settings) -> dict[str, str]:
    """The environment an operator's shell would have: only the two documented variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROSTERDROP_")}
    env["ROSTERDROP_DATA_DIR"] = str(settings.data_dir)
    env["ROSTERDROP_DATABASE_URL"] = settings.database_url
    return env


def rosterdrop(
    env: Mapping[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The installed `rosterdrop` command, as a subprocess."""
    return subprocess.run(
        [str(ROSTERDROP), *args],
        env=dict(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# Hypothesis for examples that are each a few real imports: shrinking one takes minutes (add
# Phase.shrink when debugging a failure), and slow, large examples are the point.
REAL_IMPORTS = hypothesis_settings(
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def migrate(db: Database, action: str, revision: str) -> None:
    """`alembic upgrade|downgrade REVISION` on the database, as `rosterdrop db` runs it."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with db.engine.connect() as conn:
        config.attributes["connection"] = conn
        getattr(command, action)(config, revision)
        conn.commit()
