"""Dry runs of an upload: `Pipeline.preview` in a process of its own, its answer plain data.

A process, not a thread: validating a district is seconds of Python holding the GIL against
every other request, and the preview pauses the garbage collector, which in the daemon's own
process would pause it for everything else too. The answer comes back as a JSON file.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import multiprocessing
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from daemon import folders, logs
from daemon.config import Settings
from daemon.errors import RosterdropError
from daemon.pipeline import Pipeline
from daemon.roster.outcome import FileSummary
from daemon.roster.plan import EntityChanges
from daemon.roster.problems import Problem, ProblemLog, Severity
from daemon.roster.thresholds import TrippedThreshold
from daemon.store import tenants
from daemon.store.database import Database, FileIdentity, sqlite_file

log = structlog.get_logger(__name__)

# A 100,000-student district checks in about ten seconds here: far past this, it is stuck.
DRY_RUN_TIMEOUT_SECONDS = 600.0
# The same fork server as the imports (runner.py), which has the pipeline imported already.
_CONTEXT = multiprocessing.get_context("forkserver")


@dataclass(frozen=True)
class DryRun:
    """What processing an upload would do now: the import page's figures, nothing recorded."""

    files: tuple[FileSummary, ...]
    entities: Mapping[str, EntityChanges]  # empty when a fatal problem stopped the plan
    tripped: tuple[TrippedThreshold, ...]  # the thresholds that would pause the import
    problems: tuple[Problem, ...]  # the first ones (KEEP_PROBLEMS)
    problem_totals: Mapping[str, int]

    @property
    def fatal(self) -> bool:
        return self.problem_totals.get(str(Severity.FATAL), 0) > 0

    @property
    def changes_nothing(self) -> bool:
        return bool(self.entities) and not any(c.changed for c in self.entities.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": [dataclasses.asdict(f) for f in self.files],
            "entities": {name: c.as_dict() for name, c in self.entities.items()},
            "tripped": [t.as_dict() for t in self.tripped],
            "problems": [p.as_dict() for p in self.problems],
            "problem_totals": dict(self.problem_totals),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DryRun:
        return cls(
            files=tuple(FileSummary(**f) for f in data["files"]),
            entities={n: EntityChanges.from_dict(c) for n, c in data["entities"].items()},
            tripped=tuple(TrippedThreshold.from_dict(t) for t in data["tripped"]),
            problems=tuple(Problem.from_dict(p) for p in data["problems"]),
            problem_totals=dict(data["problem_totals"]),
        )


def dry_run(
    settings: Settings,
    tenant: str,
    files: Path,
    answer: Path,
    expect: FileIdentity | None,
    report: Path | None = None,
    input_format: str | None = None,
) -> None:
    """The dry run process's body: preview `files` for `tenant`, write the answer as JSON
    (and every problem to the CSV `report`, formula-safe as an import's, when given)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the daemon decides when it stops
    logs.configure(settings.log.level, settings.log.format)
    try:
        db = Database(
            settings.database_url, lock_dir=settings.paths.locks, create=False, expect=expect
        )
    except RosterdropError as exc:
        log.error("dry run failed", tenant=tenant, error=str(exc))
        sys.exit(1)
    try:
        with db.read() as conn:
            owner = tenants.get(conn, tenant)
        with contextlib.ExitStack() as stack:
            out = (
                None
                if report is None
                else stack.enter_context(report.open("w", encoding="utf-8", newline=""))
            )
            problems = ProblemLog(out)
            pipeline = Pipeline(db, settings.paths, settings.smtp)
            preview = pipeline.preview(owner, files, problems, input_format)
        result = DryRun(
            # In the validator's order: Clever's five, or a OneRoster set's files and entities.
            files=tuple(preview.validation.files.values()),
            entities=dict(preview.plan.entities) if preview.plan else {},
            tripped=tuple(preview.tripped),
            problems=tuple(preview.problems.kept),
            problem_totals=preview.problems.totals(),
        )
        folders.write_atomically(answer, json.dumps(result.as_dict()).encode())
    except Exception as exc:
        known = isinstance(exc, RosterdropError)
        log.error("dry run failed", tenant=tenant, error=str(exc), exc_info=not known)
        sys.exit(1)
    finally:
        db.close()


class DryRunner:
    """Starts dry run processes and waits for their answers without blocking the event loop."""

    def __init__(self, settings: Settings, timeout: float = DRY_RUN_TIMEOUT_SECONDS) -> None:
        self.settings = settings
        self.timeout = timeout
        self._expect: FileIdentity | None = None
        file = sqlite_file(settings.database_url)
        with contextlib.suppress(OSError):
            if file is not None:  # the file the daemon opened: never another at its path
                stat = file.stat()
                self._expect = (stat.st_dev, stat.st_ino)

    async def check(
        self,
        tenant: str,
        files: Path,
        answer: Path,
        report: Path | None = None,
        input_format: str | None = None,
    ) -> DryRun:
        """Dry-run `files` for `tenant` in a process of its own (`input_format`: what they
        are, else the tenant's setting says)."""
        await asyncio.to_thread(answer.unlink, missing_ok=True)
        process = _CONTEXT.Process(
            target=dry_run,
            args=(self.settings, tenant, files, answer, self._expect, report, input_format),
            name=f"rosterdrop-dry-run-{tenant}",
        )
        try:
            await asyncio.to_thread(process.start)  # the fork server's first start takes a while
        except OSError as exc:
            raise RosterdropError(f"the check could not start: {exc}") from exc
        loop = asyncio.get_running_loop()
        ended = asyncio.Event()
        loop.add_reader(process.sentinel, ended.set)
        try:
            await asyncio.wait_for(ended.wait(), self.timeout)
        except TimeoutError:
            raise RosterdropError(
                f"the check took longer than {self.timeout:g} seconds and was stopped"
            ) from None
        finally:  # also when the request is cancelled: no dry run outlives its request
            loop.remove_reader(process.sentinel)
            if process.exitcode is None:
                process.kill()
            await asyncio.to_thread(process.join)
        if process.exitcode != 0:
            raise RosterdropError(
                f"the check stopped before it could finish (exit code {process.exitcode});"
                " the daemon's log says why"
            )
        try:
            text = await asyncio.to_thread(answer.read_text, encoding="utf-8")
            return DryRun.from_dict(json.loads(text))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RosterdropError(f"the check's answer could not be read: {exc}") from exc
