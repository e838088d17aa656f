"""`rosterdrop serve --once`: import whatever is waiting, send the emails, exit 0."""

from __future__ import annotations

from collections.abc import Callable

from daemon.clever.files import find_files
from daemon.pipeline import Pipeline
from daemon.store import tenants
from tests.support import drop
from tests.support.drop import District, roster_ids
from tests.support.site import Site


def test_once_imports_waiting_sets_and_resumable_imports_then_exits(
    make_site: Callable[..., Site],
) -> None:
    site = make_site()
    paths = site.settings.paths
    districts = {name: District(name, students=12) for name in ("waiting", "claimed", "halfway")}
    for name, district in districts.items():
        site.add_tenant(name, f"admin@{name}.example.org")
        district.write(paths.upload_dir(name))
    with site.db() as db:
        pipeline = Pipeline(db, paths, site.settings.smtp)
        with db.read() as conn:
            claimed = tenants.get(conn, "claimed")
        # Claimed by a daemon that stopped before running it: a resumable import.
        pipeline.receive(claimed, find_files(paths.upload_dir("claimed")), source="sftp", move=True)
        # A claim that a kill interrupted.
        drop.interrupted_claim(db, paths, "halfway", ["students.csv"])

    done = site.cli("serve", "--once")
    assert done.returncode == 0, done.stderr

    for name, district in districts.items():
        [row] = site.imports(name)  # the interrupted claim left no row behind
        assert row["state"] == "imported", name
        assert roster_ids(site.roster(name), "students", "student_id") == set(
            district.student_ids()
        )
        assert list(paths.upload_dir(name).iterdir()) == []
    sent = site.emails("import_results")
    assert len(sent) == 3
    assert {e["state"] for e in sent} == {"sent"}
    assert len(list(paths.outbox.glob("*-import_results.eml"))) == 3


def test_once_with_nothing_waiting_exits_at_once(make_site: Callable[..., Site]) -> None:
    site = make_site()
    site.add_tenant("idle")
    (site.settings.paths.upload_dir("idle") / "students.csv").write_bytes(b"school_id\r\n")
    done = site.cli("serve", "--once")
    assert done.returncode == 0, done.stderr
    assert site.imports() == []  # an incomplete set is left to wait
    assert (site.settings.paths.upload_dir("idle") / "students.csv").exists()
