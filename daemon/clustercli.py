"""`rosterdrop cluster status`: the nodes sharing the database, their heartbeats and imports."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from daemon.app import App
from daemon.store import nodes

SQLITE_NOTE = (
    "SQLite: one node, with no registry (several nodes need PostgreSQL: docs/operations.md)"
)


@click.group("cluster")
def cluster_group() -> None:
    """The nodes of a cluster (several `rosterdrop serve` on one PostgreSQL)."""


@cluster_group.command("status")
@click.option("--all", "everyone", is_flag=True, help="Also the dead and stopped nodes.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def cluster_status(app: App, everyone: bool, as_json: bool) -> None:
    """The live nodes (by their lease in the database), their last heartbeat and the
    unfinished imports each owns."""
    if app.db.is_sqlite:
        click.echo("[]" if as_json else SQLITE_NOTE)
        return
    with app.db.read() as conn:
        now = nodes.db_now(conn)
        found = [n for n in nodes.listing(conn) if everyone or n.live]
    if as_json:
        rows = [{**asdict(n), "running": list(n.running)} for n in found]
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if not found:
        click.echo("no live node")
        return
    for node in found:
        ago = (now - node.heartbeat_at).total_seconds()
        state = "live" if node.live else ("stopped" if node.stopped_at else "dead")
        running = " ".join(f"#{i}" for i in node.running) or "-"
        click.echo(
            f"node {node.id} {node.name} ({state}): host {node.host} pid {node.pid},"
            f" sftp port {node.sftp_port or '-'}, http port {node.http_port or '-'},"
            f" {node.workers} workers; heartbeat {ago:.1f} s ago; imports {running}"
        )
