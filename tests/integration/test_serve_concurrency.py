"""Many districts at once: every set imported exactly once, into its own tenant's roster."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from serve_fixtures import serving
from sftp_fixtures import PASSWORD

from daemon.config import Settings
from daemon.store.database import Database
from tests.support import drop
from tests.support.drop import District, roster_ids

TENANTS = 50
KEYS = ("school_id", "student_id", "teacher_id", "section_id")


async def test_fifty_tenants_uploading_at_once_are_each_imported_once(
    serve_settings_with: Callable[..., Settings], db: Database, sftp_password_hash: str
) -> None:
    # Four imports at a time (two is the default): more of them side by side to mix up.
    settings = serve_settings_with(ROSTERDROP_SPOOL_WORKERS="4")
    async with serving(settings, db, sftp_password_hash) as served:
        districts = [District(f"d{i:02d}", students=10 + i) for i in range(TENANTS)]
        for district in districts:
            served.add_tenant(district.tag)
        everyone_connected = threading.Barrier(TENANTS)

        def upload(district: District) -> None:
            with drop.sftp_session(served.port, district.tag, PASSWORD) as sftp:
                everyone_connected.wait(timeout=60)  # then all fifty send their files together
                drop.upload(sftp, district.files())

        def upload_all() -> None:
            with ThreadPoolExecutor(TENANTS) as pool:
                list(pool.map(upload, districts))

        await asyncio.to_thread(upload_all)

        def all_ended() -> list[dict[str, object]] | None:
            rows = drop.import_rows(served.db)
            return rows if len([r for r in rows if r["archived_at"]]) >= TENANTS else None

        rows = await served.wait(all_ended, "every tenant's import to end", seconds=90)
        assert sorted(r["tenant"] for r in rows) == sorted(d.tag for d in districts)  # once each
        assert {r["state"] for r in rows} == {"imported"}
        for district in districts:
            roster = served.roster(district.tag)
            assert roster_ids(roster, "students", "student_id") == set(district.student_ids())
            assert roster_ids(roster, "schools", "school_id") == set(district.schools)
            assert len(roster["enrollments"]) == 2 * district.students
            ids = {row[k] for rows in roster.values() for row in rows for k in KEYS if k in row}
            strangers = {i for i in ids if not i.startswith(f"{district.tag}-")}
            assert not strangers, f"{district.tag} holds another district's ids"
        assert len(drop.emails(served.db, "import_results")) == TENANTS
