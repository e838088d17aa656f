"""Clever's own sample district, uploaded over SFTP to the running daemon, imports whole."""

from __future__ import annotations

import asyncio

from serve_fixtures import Served

from daemon.store import tenants
from tests.support.sample import (
    PASSWORDS,
    PROBLEM_TOTALS,
    RECORDS,
    SAMPLE,
    counts,
    everything_stored,
)


async def test_the_sample_district_imports_whole_over_sftp(served: Served) -> None:
    tenant = served.add_tenant("sandbox")
    with served.db.write() as conn:
        current = tenants.get(conn, tenant).settings
        tenants.update(conn, tenant, settings=current.updated(max_row_errors=1))
    files = {path.name: path.read_bytes() for path in SAMPLE.iterdir()}

    await asyncio.to_thread(served.upload, tenant, files)

    [row] = await served.imports_ended(tenant)
    assert row["state"] == "imported_with_errors"
    assert row["problem_totals"] == PROBLEM_TOTALS
    assert counts(served.roster(tenant)) == RECORDS
    stored = everything_stored(served.db, served.settings.data_dir)
    for password in PASSWORDS:
        assert password not in stored
