"""The database connection: engines for SQLite and PostgreSQL, migrations, and tenant locks."""

from __future__ import annotations

import contextlib
import fcntl
import os
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from daemon.errors import Conflict, StoreError

SQLITE_BUSY_TIMEOUT_MS = 60_000
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
HEAD_REVISION = "0015"  # the newest migration; a test keeps it equal to Alembic's head
_ADVISORY_LOCK_CLASS = 0x524F5354  # "ROST": keeps our advisory locks apart from others'

log = structlog.get_logger(__name__)


def normalize_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and use the psycopg 3 driver for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL (None: another database, or in memory)."""
    parsed = sa.make_url(normalize_url(url))
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database or "").absolute()


FileIdentity = tuple[int, int]  # (st_dev, st_ino)


def _identity(path: Path) -> FileIdentity | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


class Database:
    """One engine plus the few things that differ between SQLite and PostgreSQL.

    A SQLite file is known by its identity (device and inode) from the moment it is opened or
    created: if it is deleted or replaced under a running process, every transaction fails
    (transiently: imports stay resumable) instead of going on in a ghost of the old file or
    in a new empty one; and no connection ever creates the file again. `create=False` refuses
    to create it even at the start (import processes).
    """

    def __init__(
        self,
        url: str,
        *,
        lock_dir: Path | None = None,
        create: bool = True,
        expect: FileIdentity | None = None,
    ) -> None:
        """`expect`: the identity the SQLite file must have (the one the daemon opened)."""
        self.url = normalize_url(url)
        self.file = sqlite_file(self.url)
        self._identity = _identity(self.file) if self.file else None
        self._create = create
        self._reported = False
        if self.file is not None and self._identity is None and not create:
            raise StoreError(f"the database {self.file} does not exist", transient=True)
        if self.file is not None and expect is not None and self._identity != expect:
            raise StoreError(
                f"the database {self.file} is not the file the daemon opened (replaced?)",
                transient=True,
            )
        try:
            self.engine: Engine = _create_engine(self.url)
        except (SQLAlchemyError, ImportError) as exc:
            raise StoreError(f"cannot use database {sa.make_url(self.url)!r}: {exc}") from exc
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.is_postgres = self.engine.dialect.name == "postgresql"
        if self.is_sqlite:
            db_file = self.engine.url.database or ""
            self._lock_dir = lock_dir or Path(f"{db_file}.locks")
        if self.file is not None:
            event.listen(self.engine, "do_connect", self._open_sqlite)

    def _open_sqlite(self, _dialect: Any, _record: Any, cargs: list[Any], cparams: Any) -> None:
        # mode=rw: a connection made after the file was deleted fails instead of creating it.
        mode = "rwc" if self._identity is None and self._create else "rw"
        cargs[:] = [f"file:{urllib.parse.quote(str(self.file))}?mode={mode}"]
        cparams["uri"] = True

    @property
    def identity(self) -> FileIdentity | None:
        """The SQLite file's (st_dev, st_ino) as this process knows it; None for PostgreSQL."""
        return self._identity

    def check_file(self) -> None:
        """Raise StoreError if the SQLite file is no longer the one this process opened."""
        if self.file is None:
            return
        now = _identity(self.file)
        if self._identity is None:
            self._identity = now  # created by this process's first connection
            return
        if now == self._identity:
            return
        what = "deleted" if now is None else "replaced by another file"
        message = (
            f"the database {self.file} was {what} while rosterdrop ran: restore it"
            " (from a backup) and restart rosterdrop"
        )
        if not self._reported:
            self._reported = True
            log.error("database file lost", path=str(self.file), what=what)
        raise StoreError(message, transient=True)

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        self.check_file()
        with _translated(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that writes; on SQLite it takes the write lock up front (no upgrade
        deadlocks between two writers)."""
        self.check_file()
        with _translated(), self.engine.connect() as conn:
            conn = conn.execution_options(rosterdrop_immediate=True)
            with conn.begin():
                yield conn

    def ping(self) -> None:
        with self.read() as conn:
            conn.execute(sa.text("SELECT 1"))

    @contextlib.contextmanager
    def tenant_lock(self, tenant_id: int, *, wait: bool = True) -> Iterator[None]:
        """Hold the one-import-at-a-time lock of a tenant, across processes and hosts.
        `wait=False`: raise Conflict at once if an import of the tenant is running.

        PostgreSQL: a session advisory lock, so several daemons can share the database.
        SQLite: an flock beside the database file (all users are on this machine).
        """
        busy = Conflict("an import of this tenant is running right now: try again once it ends")
        if self.is_postgres:
            with _translated(), self.engine.connect() as conn:
                taken = conn.execute(
                    sa.text(
                        f"SELECT {'pg_advisory_lock' if wait else 'pg_try_advisory_lock'}(:c, :t)"
                    ),
                    {"c": _ADVISORY_LOCK_CLASS, "t": tenant_id},
                ).scalar()
                conn.commit()
                if taken is False:
                    raise busy
                try:
                    yield
                finally:
                    conn.execute(
                        sa.text("SELECT pg_advisory_unlock(:c, :t)"),
                        {"c": _ADVISORY_LOCK_CLASS, "t": tenant_id},
                    )
                    conn.commit()
        else:
            self._lock_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._lock_dir / f"tenant-{tenant_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
                except BlockingIOError:
                    raise busy from None
                yield
            finally:
                os.close(fd)  # closing releases the lock

    def schema_version(self) -> str | None:
        """The migration the database is at (None for an empty database)."""
        self.check_file()
        with _translated(), self.engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            version: str | None = conn.execute(
                sa.text("SELECT version_num FROM alembic_version")
            ).scalar()
            return version

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (idempotent; safe with several daemons)."""
        if self.schema_version() == HEAD_REVISION:
            return  # every command opens the database: skip loading Alembic when up to date
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with _translated(), self.engine.connect() as conn:
            if self.is_postgres:
                conn.execute(sa.text("SELECT pg_advisory_lock(:c, 0)"), {"c": _ADVISORY_LOCK_CLASS})
                conn.commit()
            try:
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
                conn.commit()
                self.check_file()  # a file just created is known from now on
            finally:
                if self.is_postgres:
                    conn.execute(
                        sa.text("SELECT pg_advisory_unlock(:c, 0)"), {"c": _ADVISORY_LOCK_CLASS}
                    )
                    conn.commit()


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        database = sa.make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    engine = sa.create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8)
    event.listen(engine, "connect", _postgres_connect)
    return engine


def _postgres_connect(dbapi_conn: Any, _record: Any) -> None:
    # psycopg prepares a statement run five times on a connection; PostgreSQL's generic plan
    # of it, made for no tenant in particular, locks every district's partition (migration
    # 0014) and their indexes until the commit: with 600 districts, one import's ~15,000
    # locks ran the server out of shared memory. A plan for the statement's own tenant
    # locks one partition.
    with dbapi_conn.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_custom_plan")
    dbapi_conn.commit()


# SQLite's page cache per connection, and what a sort (the first import's key-ordered
# INSERT … SELECT) may hold in memory before it spills: 64 MiB of each took an import
# process's peak to 359 MB; 16 MiB keeps it at 260 MB, no slower on a 100,000-student
# district's first import (bench/roster_import.py).
SQLITE_CACHE_KIB = 16 * 1024


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "foreign_keys=ON",
        f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
        "temp_store=FILE",
        f"cache_size=-{SQLITE_CACHE_KIB}",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get("rosterdrop_immediate")
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """Driver errors become StoreError here, at the edge, once."""
    try:
        yield
    except SQLAlchemyError as exc:
        transient = isinstance(exc, OperationalError) or (
            isinstance(exc, DBAPIError) and exc.connection_invalidated
        )
        message = f"database error: {exc.__class__.__name__}: {_first_line(exc)}"
        no_space = _disk_full(exc)
        raise StoreError(message, transient=transient or no_space, no_space=no_space) from exc


# SQLite's SQLITE_FULL; PostgreSQL's disk_full (53100) and ENOSPC, EDQUOT in its message.
_SQLITE_FULL = 13
_PG_DISK_FULL = "53100"


def _disk_full(exc: SQLAlchemyError) -> bool:
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlite_errorcode", None) == _SQLITE_FULL:
        return True
    return getattr(orig, "sqlstate", None) == _PG_DISK_FULL


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
