"""This daemon as a node of a cluster: its registration, lease, claims and takeovers.

On PostgreSQL every `serve` is a node: it registers at start, renews its lease every
[cluster] heartbeat_seconds and ends it at a clean stop. It recovers only imports no live node
owns; every heartbeat it takes over the imports of nodes whose lease ran out, and runs the
imports handed to it (a tenant's unfinished imports all belong to one node, in upload order).
A set in an upload folder is claimed under a transaction-scoped advisory lock of its tenant,
so one node claims it, whichever node's SFTP session wrote which file.

On SQLite the database is one machine's: one node, held to that by a lock on the data
directory and one beside the database file.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import structlog

from daemon import spool
from daemon.cluster.logins import LoginSharing
from daemon.config import Settings
from daemon.errors import Conflict, RosterdropError
from daemon.intake import Intake
from daemon.metrics import CLUSTER_LIVE_NODES, CLUSTER_NODE, CLUSTER_TAKEN_OVER
from daemon.runner import ImportRunner
from daemon.sftp.throttle import LoginGuard
from daemon.store import nodes
from daemon.store.database import Database

log = structlog.get_logger(__name__)

SERVE_LOCK = "serve.lock"
Ports = Callable[[], tuple[int | None, int | None]]  # SFTP's and HTTP's, None until listening


class ClusterNode:
    """The service's member of the node registry (its blocking calls run in threads)."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.enabled = db.is_postgres
        self.node_id: int | None = None
        self._renewed = time.monotonic()  # the last heartbeat that reached the database
        self._lapsed = False  # the last heartbeat found the lease had run out
        self._locks: list[int] = []

    # -- start and stop ---------------------------------------------------------------------

    def lock_single_node(self) -> None:
        """SQLite: refuse a second `serve` on this data directory or this database file."""
        if self.enabled:
            return  # PostgreSQL: nodes meet in the registry, never in a file lock (NFS)
        places = [self.settings.paths.root / SERVE_LOCK]
        if self.db.file is not None:
            places.append(self.db.file.with_name(f"{self.db.file.name}.{SERVE_LOCK}"))
        for place in places:
            self._locks.append(_flock(place, self.settings.paths.root))

    def register(self) -> int | None:
        """Join the registry (PostgreSQL; SQLite's one node needs none); the node's id."""
        if not self.enabled:
            return None
        cluster = self.settings.cluster
        host = socket.gethostname()
        with self.db.write() as conn:
            self.node_id = nodes.register(
                conn,
                name=cluster.node_name or f"{host}:{os.getpid()}",
                host=host,
                pid=os.getpid(),
                workers=self.settings.spool.workers,
                lease_seconds=cluster.lease_seconds,
            )
        self._renewed = time.monotonic()
        CLUSTER_NODE.set(self.node_id)
        log.info("cluster node registered", node_id=self.node_id)
        return self.node_id

    def stop(self) -> None:
        if self.node_id is not None:
            with contextlib.suppress(RosterdropError), self.db.write() as conn:
                nodes.stop(conn, self.node_id)
        for fd in self._locks:
            os.close(fd)
        self._locks.clear()

    # -- imports ----------------------------------------------------------------------------

    def recover(self, intake: Intake) -> list[tuple[str, int]]:
        """At start: the imports to run again. In a cluster, only those of dead nodes and of
        none (a command's): a live node's import is never touched."""
        if not self.enabled or self.node_id is None:
            return intake.recover()
        with self.db.write() as conn:
            taken = nodes.take_over(conn, self.node_id, unowned=True)
        self._taken(taken)
        return intake.recover(lambda record: record.node_id == self.node_id)

    def tick(self, intake: Intake, ports: tuple[int | None, int | None]) -> list[tuple[str, int]]:
        """A heartbeat: renew the lease, take over dead nodes' imports (undoing their
        interrupted claims, archiving what ended), and return the imports this node owns."""
        if self.node_id is None:
            return []
        lease = self.settings.cluster.lease_seconds
        with self.db.write() as conn:
            held = nodes.heartbeat(
                conn, self.node_id, lease, sftp_port=ports[0], http_port=ports[1]
            )
            live = 1 + len(nodes.live_others(conn, self.node_id))
        self._renewed = time.monotonic()
        CLUSTER_LIVE_NODES.set(live)
        if not held:
            # Others may have taken our imports meanwhile; the tenant locks keep any import
            # from running twice at once, and its state from being recorded twice.
            log.error("this node's lease had run out; it is renewed", node_id=self.node_id)
        self._lapsed = not held
        # Back from a lapse of our own (the database was away): the others' leases ran out
        # with ours, and their next heartbeat renews them. Taking their imports now would
        # put one tenant's imports on two nodes.
        taken = []
        if held:
            with self.db.write() as conn:
                taken = nodes.take_over(conn, self.node_id)
        if taken:
            self._taken(taken)
            wanted = set(taken)
            intake.recover(lambda record: record.id in wanted)
        with self.db.read() as conn:
            return nodes.owned(conn, self.node_id)

    @property
    def lease_held(self) -> bool:
        """Whether this node still holds its lease, as far as it knows (for /readyz): its last
        heartbeat reached the database within lease_seconds, and found it unexpired."""
        recent = time.monotonic() - self._renewed < self.settings.cluster.lease_seconds
        return recent and not self._lapsed

    def _taken(self, taken: list[int]) -> None:
        if taken:
            CLUSTER_TAKEN_OVER.inc(len(taken))
            log.warning("imports of dead nodes taken over", node_id=self.node_id, imports=taken)

    def background(
        self, intake: Intake, runner: ImportRunner, guard: LoginGuard, ports: Ports
    ) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        """The node's tasks for the service to run: its heartbeats and the shared login
        failures (none on SQLite)."""
        if not self.enabled or self.node_id is None:
            return []
        logins = LoginSharing(self.db, guard, self.node_id, self.settings.sftp)
        return [("cluster", lambda: self.run(intake, runner, ports)), ("logins", logins.run)]

    async def run(self, intake: Intake, runner: ImportRunner, ports: Ports) -> None:
        """Heartbeats until cancelled; the imports handed or taken over go to the runner."""
        every = self.settings.cluster.heartbeat_seconds
        while True:
            # Imports the runner has now are its own to finish: one that ended while the
            # database was read must not be submitted again.
            before = runner.known()
            try:
                owned = await asyncio.to_thread(self.tick, intake, ports())
            except RosterdropError as exc:  # the database is away: the next beat tries again
                log.error("cluster heartbeat failed", node_id=self.node_id, error=str(exc))
                owned = []
            for tenant, import_id in owned:
                if import_id not in before:
                    runner.submit(tenant, import_id)
            await asyncio.sleep(every)

    @contextlib.contextmanager
    def claiming(self, tenant_id: int) -> Iterator[bool]:
        """Hold the claim of a tenant's upload folder for the block; False: another node is
        claiming it now (its files will be gone, or claimed, when we look again)."""
        if not self.enabled:
            yield True
            return
        with self.db.write() as conn:
            yield nodes.xact_lock(conn, tenant_id, wait=False)

    @contextlib.contextmanager
    def reporting(self) -> Iterator[None]:
        """Hold the cluster's one lock of the stuck-set reports (rare: one a set) for the
        block: a node decides and records a report while no other does."""
        if not self.enabled:
            yield
            return
        with self.db.write() as conn:
            nodes.xact_lock(conn, nodes.REPORTS_KEY)
            yield

    def adopt(self, import_id: int, tenant_id: int) -> bool:
        """Whether this node runs a just-claimed import (else its tenant's older imports'
        node does, and picks it up at its next heartbeat)."""
        if not self.enabled or self.node_id is None:
            return True
        with self.db.write() as conn:
            owner = nodes.adopt(conn, import_id, tenant_id, self.node_id)
        if owner != self.node_id:
            log.info("import handed to its tenant's node", import_id=import_id, node_id=owner)
        return owner == self.node_id

    def remove_abandoned_partials(self) -> int:
        """At start, before SFTP listens. One node: every partial upload is a crash's. In a
        cluster another node may be writing one: only those nobody wrote for longer than a
        session may stay idle (sftp.idle_timeout) go."""
        if not self.enabled:
            return spool.remove_abandoned_partials(self.settings.paths)
        return remove_stale_partials(self.settings.paths.tenants, self.settings.sftp.idle_timeout)


def remove_stale_partials(tenants: Path, older_than: float) -> int:
    """Remove the partial uploads nobody has written for `older_than` seconds."""
    removed = 0
    now = time.time()
    for upload in tenants.glob("*/upload"):
        for path in upload.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if spool.is_partial(path.name) and now - path.stat().st_mtime > older_than:
                    path.unlink()
                    removed += 1
    if removed:
        log.info("abandoned partial uploads removed", count=removed)
    return removed


def _flock(path: Path, root: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise Conflict(
            f"another `rosterdrop serve` is running on {root} (or on its SQLite database):"
            " SQLite is one node's database; several nodes need PostgreSQL"
            " (see docs/operations.md)"
        ) from None
    return fd
