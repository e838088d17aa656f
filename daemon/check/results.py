"""A check's answer in the tenant's /check/results: written whole, and only so many kept.

Each file is written under a hidden partial name (never listed, never reachable over SFTP)
and renamed into place, so a client polling the folder sees it whole or not at all.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from daemon.check.report import as_text
from daemon.folders import fsync_dir
from daemon.spool import partial_name

SUFFIXES = ("-report.txt", "-problems.csv", "-report.json")
# 20261201T143005Z-check12: sorts by time; the id says which check (`rosterdrop checks show`).
_NAME = re.compile(r"(\d{8}T\d{6}Z-check\d+)-(report\.txt|problems\.csv|report\.json)")


def results_name(check_id: int, received_at: datetime) -> str:
    return f"{received_at.strftime('%Y%m%dT%H%M%SZ')}-check{check_id}"


def write(
    folder: Path, name: str, answer: Mapping[str, Any], problems_csv: Path | None, keep: int
) -> None:
    """Write a check's three files into `folder`, then remove all but the newest `keep`
    checks' files. Without a problem report (the check failed) there is no CSV."""
    folder.mkdir(parents=True, exist_ok=True)
    data = json.dumps(answer, indent=2, ensure_ascii=False).encode()
    _put(folder / f"{name}-report.json", data)
    if problems_csv is not None:
        _put_copy(problems_csv, folder / f"{name}-problems.csv")
    # The readable report last: a client waiting for it finds the other two beside it.
    _put(folder / f"{name}-report.txt", as_text(answer).encode())
    trim(folder, keep)


def trim(folder: Path, keep: int) -> list[str]:
    """Remove the files of all but the newest `keep` checks; returns the names removed.
    Files a client removed stay removed: only what is there is looked at."""
    checks: dict[str, list[Path]] = {}
    for path in folder.iterdir():
        match = _NAME.fullmatch(path.name)
        if match:
            checks.setdefault(match[1], []).append(path)
    removed = []
    for old in sorted(checks, key=_order)[:-keep]:
        for path in checks[old]:
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def _order(name: str) -> tuple[str, int]:
    stamp, _, check = name.partition("-check")
    return stamp, int(check)


def _put(path: Path, data: bytes) -> None:
    _put_with(path, lambda handle: handle.write(data))


def _put_copy(source: Path, path: Path) -> None:
    with source.open("rb") as src:
        _put_with(path, lambda handle: shutil.copyfileobj(src, handle))


def _put_with(path: Path, fill: Callable[[IO[bytes]], object]) -> None:
    tmp = path.with_name(partial_name(path.name))
    try:
        with tmp.open("wb") as handle:
            fill(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
