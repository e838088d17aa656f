"""A tenant's bounds in the whole daemon: its imports in the archive count toward its quota, it
hands in a bounded number of sets an hour, and one tenant at its handle cap leaves another
district free to log in, upload and be imported."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from serve_fixtures import serving
from sftp_fixtures import PASSWORD

from daemon.config import Settings
from daemon.store.database import Database
from tests.support import drop
from tests.support.drop import District

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize("first", ["/upload", "/check"])
async def test_the_archive_counts_toward_the_quota_of_the_next_upload(
    serve_settings_with: Callable[..., Settings], db: Database, sftp_password_hash: str, first: str
) -> None:
    """An import's archive, or a check's (/check shares /upload's quota)."""
    from tests.support import checks

    district = District("acme", students=3000)
    size = sum(len(data) for data in district.files().values())
    quota = size * 3 // 2  # one set fits; a second one beside the first's archive does not
    settings = serve_settings_with(ROSTERDROP_SFTP_TENANT_QUOTA_BYTES=str(quota))
    async with serving(settings, db, sftp_password_hash) as served:
        served.add_tenant("acme")
        if first == "/upload":
            await asyncio.to_thread(served.upload, "acme", district.files())
            [row] = await served.imports_ended("acme")
            assert row["state"] == "imported"
        else:
            files = district.files()
            await asyncio.to_thread(checks.check_set, served.port, "acme", PASSWORD, files)
            await served.wait(lambda: checks.ended_checks(db, "acme", 1), "the check")
        for folder in ("/upload", "/check"):
            with pytest.raises(OSError, match="over its storage quota"):
                await asyncio.to_thread(_upload_unpipelined, served.port, district.files(), folder)


def _upload_unpipelined(port: int, files: dict[str, bytes], folder: str = "/upload") -> None:
    """Each write waits for its answer, so that the server's refusal is what the client raises
    (paramiko's pipelined putfo reports only the stat that follows)."""
    with drop.sftp_session(port, "acme", PASSWORD) as sftp:
        for name, data in files.items():
            with sftp.open(f"{folder}/{name}", "wb") as handle:
                handle.write(data)


async def test_sets_past_the_hourly_bound_are_refused_with_a_reason(
    serve_settings_with: Callable[..., Settings], db: Database, sftp_password_hash: str
) -> None:
    settings = serve_settings_with(ROSTERDROP_SFTP_MAX_SETS_PER_HOUR="1")
    district = District("acme", students=20)
    async with serving(settings, db, sftp_password_hash) as served:
        served.add_tenant("acme")
        await asyncio.to_thread(served.upload, "acme", district.files())
        await served.imports_ended("acme")
        with pytest.raises(OSError, match=r"too many sets .* \(1, at most 1\)"):
            await asyncio.to_thread(served.upload, "acme", district.files())
    assert len(drop.import_rows(db, "acme")) == 1


async def test_a_tenant_at_its_handle_cap_leaves_another_district_served(
    serve_settings: Settings, db: Database, sftp_password_hash: str
) -> None:
    cap = serve_settings.sftp.max_open_files_per_tenant
    async with serving(serve_settings, db, sftp_password_hash) as served:
        served.add_tenant("hog")
        served.add_tenant("acme")
        (served.upload_dir("hog") / "notes.txt").write_bytes(b"n" * 1000)
        holding, release = threading.Event(), threading.Event()
        refused: list[str] = []
        before = _rss_mib()

        def hog() -> None:
            with (
                drop.sftp_session(served.port, "hog", PASSWORD) as first,
                drop.sftp_session(served.port, "hog", PASSWORD) as second,
            ):
                handles = [(first, second)[n % 2].open("/upload/notes.txt") for n in range(cap)]
                try:
                    second.open("/upload/notes.txt")
                except OSError as exc:
                    refused.append(str(exc))
                holding.set()
                release.wait(60)
                for handle in handles:
                    handle.close()

        held = asyncio.create_task(asyncio.to_thread(hog))
        try:
            assert await asyncio.to_thread(holding.wait, 30)
            await asyncio.to_thread(served.upload, "acme", District("acme", students=50).files())
            [done] = await served.imports_ended("acme")
            during = _rss_mib()
        finally:
            release.set()
            await held
    assert refused
    assert f"too many open files for this account (at most {cap})" in refused[0]
    assert done["state"] == "imported"
    print(f"handle flood: {cap} handles held, RSS {before:.1f} -> {during:.1f} MiB")


async def test_check_shares_the_hourly_bound_and_file_count_of_upload(
    serve_settings_with: Callable[..., Settings], db: Database, sftp_password_hash: str
) -> None:
    from tests.support import checks

    settings = serve_settings_with(
        ROSTERDROP_SFTP_MAX_SETS_PER_HOUR="1", ROSTERDROP_SFTP_MAX_FILES_PER_TENANT="6"
    )
    district = District("acme", students=20)
    async with serving(settings, db, sftp_password_hash) as served:
        served.add_tenant("acme")
        await asyncio.to_thread(checks.check_set, served.port, "acme", PASSWORD, district.files())
        await served.wait(lambda: checks.ended_checks(db, "acme", 1), "the check")
        # The check was the set of this hour: /upload is refused, and /check too.
        with pytest.raises(OSError, match=r"too many sets .* \(1, at most 1\)"):
            await asyncio.to_thread(served.upload, "acme", district.files())
        with pytest.raises(OSError, match=r"too many sets .* \(1, at most 1\)"):
            await asyncio.to_thread(
                checks.check_set, served.port, "acme", PASSWORD, district.files()
            )
    assert drop.import_rows(db, "acme") == []
    assert len(checks.check_rows(db, "acme")) == 1


async def test_check_files_count_toward_the_file_bound_of_upload(
    serve_settings_with: Callable[..., Settings], db: Database, sftp_password_hash: str
) -> None:
    from tests.support import checks

    settings = serve_settings_with(
        ROSTERDROP_SFTP_MAX_FILES_PER_TENANT="6", ROSTERDROP_SETTLE_SECONDS="3600"
    )
    district = District("acme", students=5).files()
    async with serving(settings, db, sftp_password_hash) as served:
        served.add_tenant("acme")
        await asyncio.to_thread(checks.check_set, served.port, "acme", PASSWORD, district)
        await asyncio.to_thread(
            served.upload, "acme", {"schools.csv": district["schools.csv"]}
        )  # the sixth file: at the bound
        with pytest.raises(OSError, match=r"too many files in your folder \(at most 6\)"):
            await asyncio.to_thread(
                served.upload, "acme", {"teachers.csv": district["teachers.csv"]}
            )
