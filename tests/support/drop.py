"""Dropping uploads on a running `rosterdrop serve` and watching what it makes of them.

`District` writes a small, valid five-file Clever set whose ids all carry the district's tag,
so a test can tell one tenant's roster from another's; the upload helpers speak SFTP with
paramiko the way an SIS scheduler does (blocking: call them in a thread).
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import paramiko
import sqlalchemy as sa

from daemon.config import DataPaths
from daemon.store import imports as import_records
from daemon.store import tenants as tenant_records
from daemon.store.database import Database
from daemon.store.tables import imports, outbox

T = TypeVar("T")
ENDED = ("imported", "imported_with_errors", "failed", "rejected", "superseded")

STUDENT_COLUMNS = [
    *("school_id", "student_id", "first_name", "last_name"),
    *("username", "student_email", "grade"),
]
SECTION_COLUMNS = ["school_id", "section_id", "teacher_id", "course_name", "term_start", "term_end"]


@dataclass(frozen=True)
class District:
    """A district of `students` students in two schools, each enrolled in two of `sections`
    sections. More students later is a newer snapshot that deactivates nothing."""

    tag: str
    students: int = 12
    sections: int = 6

    @property
    def schools(self) -> list[str]:
        return [f"{self.tag}-SCH1", f"{self.tag}-SCH2"]

    def student_ids(self) -> list[str]:
        return [f"{self.tag}-S{i:06d}" for i in range(self.students)]

    def files(self) -> dict[str, bytes]:
        # Even counts: row i's school, teacher and sections then all share i's parity.
        teachers = max(2, self.students // 20) // 2 * 2
        sections = max(4, self.sections) // 2 * 2
        tag, schools = self.tag, self.schools
        tables = {
            "schools.csv": [["school_id", "school_name"], *([s, f"School {s}"] for s in schools)],
            "teachers.csv": [
                ["school_id", "teacher_id", "first_name", "last_name", "teacher_email"],
                *(
                    [schools[i % 2], f"{tag}-T{i:05d}", "Ada", f"Teacher{i}", f"t{i}@example.org"]
                    for i in range(teachers)
                ),
            ],
            "students.csv": [
                STUDENT_COLUMNS,
                *(
                    [schools[i % 2], f"{tag}-S{i:06d}", "Zoë", f"O'Brien {i}", f"u{i}", "", ""]
                    for i in range(self.students)
                ),
            ],
            "sections.csv": [
                SECTION_COLUMNS,
                *(
                    [
                        schools[i % 2],
                        f"{tag}-C{i:05d}",
                        f"{tag}-T{i % teachers:05d}",
                        f"Course {i}",
                        "",
                        "",
                    ]
                    for i in range(sections)
                ),
            ],
            "enrollments.csv": [
                ["school_id", "section_id", "student_id"],
                *(
                    [schools[i % 2], f"{tag}-C{(i + 2 * k) % sections:05d}", f"{tag}-S{i:06d}"]
                    for i in range(self.students)
                    for k in range(2)
                ),
            ],
        }
        return {name: _csv(rows) for name, rows in tables.items()}

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in self.files().items():
            (folder / name).write_bytes(data)
        return folder


def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode()


def roster_ids(roster: Mapping[str, list[dict[str, Any]]], entity: str, key: str) -> set[str]:
    return {row[key] for row in roster[entity]}


# -- SFTP -------------------------------------------------------------------------------------


@contextmanager
def sftp_session(
    port: int, username: str, password: str, *, timeout: float = 20
) -> Iterator[paramiko.SFTPClient]:
    """Log in the way a district's script does: paramiko's SSHClient, password only."""
    with paramiko.SSHClient() as ssh:
        ssh.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        ssh.connect(
            "127.0.0.1", port, username, password,
            timeout=timeout, allow_agent=False, look_for_keys=False,
        )  # fmt: skip
        with ssh.open_sftp() as sftp:
            yield sftp


def server_fingerprint(port: int) -> str:
    """The host key a server on loopback `port` presents: its type and fingerprint."""
    transport = paramiko.Transport(("127.0.0.1", port))
    try:
        transport.start_client(timeout=10)
        key = transport.get_remote_server_key()
        return f"{key.get_name()} {key.fingerprint}"
    finally:
        transport.close()


def upload(
    sftp: paramiko.SFTPClient, files: Mapping[str, bytes], *, filepart: bool = False
) -> float:
    """Put each file into /upload (WinSCP style with `filepart`); returns the clock time at
    which the last one was closed."""
    for name, data in files.items():
        target = f"/upload/{name}"
        if filepart:
            sftp.putfo(io.BytesIO(data), target + ".filepart")
            sftp.posix_rename(target + ".filepart", target)
        else:
            sftp.putfo(io.BytesIO(data), target)
    return time.monotonic()


def upload_set(port: int, username: str, password: str, files: Mapping[str, bytes]) -> float:
    with sftp_session(port, username, password) as sftp:
        return upload(sftp, files)


# -- waiting on the database --------------------------------------------------------------------


def poll(check: Callable[[], T | None], seconds: float, what: str, every: float = 0.05) -> T:
    """Call `check` until it returns something other than None (or fail after `seconds`)."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(every)


def import_rows(db: Database, tenant: str | None = None) -> list[dict[str, Any]]:
    """Every import (oldest first) with its tenant's name, as plain dicts."""
    from daemon.store.tables import tenants

    query = (
        sa.select(imports, tenants.c.name.label("tenant"))
        .join(tenants, tenants.c.id == imports.c.tenant_id)
        .order_by(imports.c.id)
    )
    if tenant is not None:
        query = query.where(tenants.c.name == tenant)
    with db.read() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def ended_imports(db: Database, tenant: str, count: int) -> list[dict[str, Any]] | None:
    """The tenant's imports once `count` of them have ended (and been archived), else None."""
    rows = import_rows(db, tenant)
    done = [r for r in rows if r["state"] in ENDED and r["archived_at"] is not None]
    return rows if len(done) >= count else None


def emails(db: Database, kind: str | None = None) -> list[dict[str, Any]]:
    query = sa.select(outbox.c.id, outbox.c.kind, outbox.c.import_id, outbox.c.state)
    if kind is not None:
        query = query.where(outbox.c.kind == kind)
    with db.read() as conn:
        return [dict(row) for row in conn.execute(query.order_by(outbox.c.id)).mappings()]


def interrupted_claim(db: Database, paths: DataPaths, tenant: str, moved: Iterable[str]) -> Path:
    """What a kill in the middle of Pipeline.receive leaves: the import row, a spool folder
    holding some of the upload's files (`moved`), no manifest. Returns that folder."""
    now = datetime.now(UTC)
    with db.write() as conn:
        tenant_id = tenant_records.get(conn, tenant).id
        import_id = import_records.create(conn, tenant_id, source="sftp", files={}, now=now)
        folder = paths.spool / tenant / str(import_id)
        import_records.update(conn, import_id, now, files_dir=str(folder))
    folder.mkdir(parents=True)
    for name in moved:
        os.replace(paths.upload_dir(tenant) / name, folder / name)
    return folder
