"""SQLite is the embedded, single-node default: a second `rosterdrop serve` on the same data
directory, or on the same database file from another data directory, is refused with a
message that says why and what to use instead."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.support.process import Daemon
from tests.support.site import Site

SECOND_NODE = "SQLite is one node's database; several nodes need PostgreSQL"


def refused(daemon: Daemon) -> str:
    """What a `serve` refused at its start says (its one line is the command's error, not a
    log line)."""
    daemon.start()
    assert daemon.process is not None
    assert daemon.process.wait(30) == 2  # the CLI's exit code of an error it explains
    return daemon.log.read_text()


def test_a_second_node_on_sqlite_is_refused_and_told_to_use_postgresql(
    make_site: Callable[..., Site], tmp_path: Path
) -> None:
    site = make_site()
    with site.daemon("first") as first:
        first.ready()
        assert SECOND_NODE in refused(site.daemon("second"))
        # Another data directory (another machine's, say) on the same database file.
        elsewhere = {"ROSTERDROP_DATA_DIR": str(tmp_path / "elsewhere")}
        database = site.settings.database_url
        assert SECOND_NODE in refused(
            site.daemon("third", ROSTERDROP_DATABASE_URL=database, **elsewhere)
        )
        assert first.stop() == 0
    # The first node's own stop releases the locks: the next start is the one node.
    with site.daemon("again") as again:
        again.ready()
        assert again.stop() == 0
