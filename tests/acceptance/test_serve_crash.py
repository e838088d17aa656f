"""kill -9 during an import: after a restart the import completes exactly once.

The embedded default (SQLite) with a district big enough that its import takes a while: the
kill lands after the import process has marked it as validating and before it commits.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import drop
from tests.support.drop import District, roster_ids
from tests.support.process import Daemon, wait_until
from tests.support.site import Site, upload

BIG = District("big", students=20_000, sections=2_000)
RESUMABLE = ("received", "validating", "approved", "importing")


def ended(site: Site, count: int) -> list[dict[str, Any]] | None:
    with site.db() as db:
        return drop.ended_imports(db, "big", count)


def running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended


def descendants(pid: int) -> list[int]:
    """pid and every process below it (the fork server, the import processes)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # ended meanwhile
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def kill_during_import(site: Site, daemon: Daemon, *, whole_service: bool) -> int:
    """Upload BIG, SIGKILL once its import runs; returns the pid of the import process."""
    daemon.ready()
    upload(daemon.sftp_port, "big", BIG.files())
    started = daemon.wait_for("import started", 30)
    wait_until(
        lambda: [r for r in site.imports("big") if r["state"] == "validating"], 30, "validating"
    )
    # systemd kills the whole control group; a plain `kill -9 PID` only the main process.
    victims = descendants(daemon.pid) if whole_service else [daemon.pid]
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    assert daemon.process is not None
    assert daemon.process.wait(10) == -signal.SIGKILL
    [row] = site.imports("big")
    assert row["state"] in RESUMABLE, "the kill came too late: the import had ended"
    return int(started["pid"])


@pytest.mark.parametrize("whole_service", [True, False], ids=["cgroup", "main-process"])
def test_kill_9_during_an_import_then_restart_imports_once(
    make_site: Callable[..., Site], whole_service: bool
) -> None:
    site = make_site()
    site.add_tenant("big", "admin@big.example.org")
    with site.daemon("first") as daemon:
        importer = kill_during_import(site, daemon, whole_service=whole_service)
    if whole_service:
        wait_until(lambda: not running(importer), 10, "the import process to die")
        assert site.roster("big")["students"] == []  # its transaction never committed

    with site.daemon("second") as daemon:
        daemon.ready()
        wait_until(lambda: ended(site, 1), 60, "the import to end after the restart")
        assert daemon.stop() == 0

    [row] = site.imports("big")
    assert row["state"] == "imported"
    # Killed with it, the import ran again; orphaned, it finished while the restart waited.
    assert row["attempts"] == (2 if whole_service else 1)
    roster = site.roster("big")
    assert roster_ids(roster, "students", "student_id") == set(BIG.student_ids())
    assert len(roster["enrollments"]) == 2 * BIG.students
    [email] = site.emails("import_results")
    assert email["import_id"] == row["id"]
    archived = site.settings.paths.archive / "big" / str(row["id"])
    assert {p.name for p in archived.iterdir()} >= set(BIG.files())
    assert not any(site.settings.paths.spool.rglob("*.csv"))


def test_an_import_process_that_dies_runs_again_before_the_next_upload(
    make_site: Callable[..., Site],
) -> None:
    site = make_site()
    site.add_tenant("big", "admin@big.example.org")
    newer = District("big", students=BIG.students + 10, sections=BIG.sections)
    with site.daemon() as daemon:
        daemon.ready()
        upload(daemon.sftp_port, "big", BIG.files())
        started = daemon.wait_for("import started", 30)
        wait_until(lambda: site.imports("big")[0]["state"] == "validating", 30, "validating")
        os.kill(int(started["pid"]), signal.SIGKILL)  # what the kernel's OOM killer does
        upload(daemon.sftp_port, "big", newer.files())  # the next day's export arrives
        rows = wait_until(lambda: ended(site, 2), 60, "both imports to end")
        assert daemon.stop() == 0
    assert daemon.find("import process ended abnormally; it runs again", exitcode=-9)

    first, second = rows
    assert (first["state"], first["attempts"]) == ("imported", 2)
    assert (second["state"], second["attempts"]) == ("imported", 1)
    assert first["finished_at"] <= second["started_at"]  # in upload order, the older first
    assert roster_ids(site.roster("big"), "students", "student_id") == set(newer.student_ids())
    assert [e["import_id"] for e in site.emails("import_results")] == [first["id"], second["id"]]
