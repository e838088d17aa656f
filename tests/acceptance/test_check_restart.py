"""/check across stops: `rosterdrop serve --once` answers what waits in /check, carries on
with a check a stop cut short, undoes a claim a kill interrupted, and finishes a check that
was answered but not yet cleaned up — each answered exactly once."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime

from daemon.check.checker import Checker
from daemon.clever.files import find_files
from daemon.dryrun import DryRunner
from daemon.store import checks, tenants
from tests.support import checks as check_support
from tests.support.drop import District
from tests.support.site import Site


def test_once_answers_waiting_interrupted_and_unfinished_checks(
    make_site: Callable[..., Site],
) -> None:
    site = make_site()
    paths = site.settings.paths
    names = ("waiting", "claimed", "halfway")
    for name in names:
        site.add_tenant(name, f"admin@{name}.example.org")
        District(name, students=10).write(paths.check_dir(name))
    site.add_tenant("answered", "admin@answered.example.org")
    District("answered", students=10).write(paths.check_dir("answered"))
    with site.db() as db:
        checker = Checker(db, site.settings, DryRunner(site.settings))
        with db.read() as conn:
            claimed = tenants.get(conn, "claimed")
            halfway = tenants.get(conn, "halfway")
        # Claimed by a daemon that stopped before it could run it.
        checker.receive(claimed, find_files(paths.check_dir("claimed")))
        # Answered (and recorded), then a stop before the files left /check.
        with db.read() as conn:
            answered = tenants.get(conn, "answered")
        done_id = checker.receive(answered, find_files(paths.check_dir("answered")))
        with db.write() as conn:
            checks.update(conn, done_id, state="checked", results_name="answered-before")
        # A claim a kill interrupted: the row and part of the copy, no manifest.
        now = datetime.now(UTC)
        with db.write() as conn:
            lost = checks.create(conn, halfway.id, files={}, now=now)
            folder = paths.spool / "halfway" / f"check-{lost}"
            checks.update(conn, lost, files_dir=str(folder))
        folder.mkdir(parents=True)
        (folder / "students.csv").write_bytes(b"a partial copy")

    done = site.cli("serve", "--once")
    assert done.returncode == 0, done.stderr

    with site.db() as db:
        for name in names:
            [row] = check_support.check_rows(db, name)  # the interrupted claim left no row
            assert row["state"] == "checked", name
            assert row["archived_at"] is not None, name
            assert row["result"]["outcome"] == "import", name
            assert sorted(os.listdir(paths.check_dir(name))) == ["results"], name
            answers = os.listdir(paths.check_results(name))
            assert sorted(answers) == sorted(
                f"{row['results_name']}{suffix}"
                for suffix in ("-problems.csv", "-report.json", "-report.txt")
            ), name
    assert not folder.exists()
    with site.db() as db:
        [row] = check_support.check_rows(db, "answered")
    assert row["results_name"] == "answered-before"  # not run again
    assert row["archived_at"] is not None
    assert [n for n in os.listdir(paths.check_dir("answered")) if n != "results"] == []
    assert not paths.check_results("answered").exists() or not any(
        paths.check_results("answered").iterdir()
    )
    assert site.imports() == []
    # Nothing left to do: a second run answers nothing again.
    again = site.cli("serve", "--once")
    assert again.returncode == 0, again.stderr
    with site.db() as db:
        assert all(len(check_support.check_rows(db, name)) == 1 for name in names)
