"""A disk filled by someone else under a running `rosterdrop serve`: the district's import waits
for space (an error in the log at each try, a gauge in /metrics) instead of burning its three
attempts in 40 s, and it imports once there is space again, its attempts unspent."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from daemon.clever.files import find_files
from daemon.pipeline import Pipeline
from daemon.store import tenants
from tests.support.clever import minimal_files, write_upload
from tests.support.process import metric, wait_until
from tests.support.site import Site

SMALL_DISK = "8m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of its own for the data directory, so that filling it hurts nobody else."""
    mount = tmp_path / "data"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SMALL_DISK}", "tmpfs", str(mount)], check=True
    )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Someone else's file that takes every free block."""
    filler = disk / "someone-elses-backup.tar"
    chunk = b"\0" * (64 << 10)
    with filler.open("wb", buffering=0) as out:
        for size in (len(chunk), 512):  # then the last blocks, smaller than a chunk
            with pytest.raises(OSError, match="No space") as full:  # noqa: PT012 - until full
                while True:
                    out.write(chunk[:size])
            assert full.value.errno == errno.ENOSPC
    return filler


def test_an_import_waits_for_disk_space_without_spending_its_attempts(
    make_site: Callable[..., Site], small_disk: Path, tmp_path: Path
) -> None:
    db_dir = tmp_path / "db"  # the database stays on a disk with room: only the data dir fills
    site = make_site(
        ROSTERDROP_DATABASE_URL=f"sqlite:///{db_dir / 'rosterdrop.db'}",
        ROSTERDROP_SPOOL_NO_SPACE_RETRY_SECONDS="0.3",
    )
    site.add_tenant("acme", "admin@acme.example.org")
    with site.db() as db:  # the district's upload, claimed just before the disk filled up
        with db.read() as conn:
            owner = tenants.get(conn, "acme")
        files = find_files(write_upload(tmp_path / "upload", minimal_files()))
        import_id = Pipeline(db, site.settings.paths, site.settings.smtp).receive(
            owner, files, source="sftp", move=False
        )
    filler = fill(small_disk)

    with site.daemon() as daemon:
        daemon.ready()
        wait_until(
            lambda: len(daemon.find("import waits for disk space", import_id=import_id)) >= 3,
            30,
            "three tries that found no space",
        )
        [row] = site.imports("acme")
        assert (row["state"], row["attempts"]) == ("validating", 1)
        metrics = daemon.metrics()
        assert metric(metrics, "rosterdrop_imports_waiting_for_space") == 1
        assert metric(metrics, "rosterdrop_import_no_space_total") >= 3
        assert daemon.find("import stopped: no disk space", import_id=import_id)

        filler.unlink()  # space again
        wait_until(
            lambda: site.imports("acme")[0]["state"] == "imported", 30, "the import to finish"
        )
        assert site.imports("acme")[0]["attempts"] == 1
        wait_until(  # once its process has ended
            lambda: metric(daemon.metrics(), "rosterdrop_imports_waiting_for_space") == 0,
            10,
            "the gauge to drop",
        )
        assert daemon.stop() == 0
    assert daemon.find("too_many_attempts") == []
