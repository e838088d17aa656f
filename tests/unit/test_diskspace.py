"""What counts as out of disk space: the OS's ENOSPC and EDQUOT however deep they are wrapped,
and the database's own "disk full", translated once at the store's edge."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from daemon.diskspace import out_of_space
from daemon.errors import SpoolError, StoreError
from daemon.store.database import Database


def test_enospc_and_edquot_count_wherever_they_are_wrapped() -> None:
    for code in (errno.ENOSPC, errno.EDQUOT):
        cause = OSError(code, os.strerror(code))
        assert out_of_space(cause)
        wrapped = SpoolError("could not archive")
        wrapped.__cause__ = cause  # what `raise SpoolError(...) from exc` leaves
        assert out_of_space(wrapped)
    assert not out_of_space(OSError(errno.EACCES, "denied"))
    assert not out_of_space(StoreError("gone", transient=True))


def test_a_full_sqlite_database_is_no_space_and_transient(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'full.db'}")
    try:
        with db.write() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x TEXT)")
        with pytest.raises(StoreError) as caught:
            fill_beyond_its_page_limit(db)
        assert caught.value.no_space
        assert caught.value.transient
        assert out_of_space(caught.value)
    finally:
        db.close()


def fill_beyond_its_page_limit(db: Database) -> None:
    with db.write() as conn:
        # A page limit makes SQLite answer SQLITE_FULL, exactly as a full disk does.
        conn.exec_driver_sql("PRAGMA max_page_count = 8")
        for _ in range(100):
            conn.execute(sa.text("INSERT INTO t VALUES (:x)"), {"x": "x" * 4000})
