"""An import's folder: claiming files into the spool, the manifest, archiving and expiry.

A claim is complete once `manifest.json` exists; until then a restart puts the files back.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from daemon.errors import SpoolError

MANIFEST = "manifest.json"
PROBLEMS = "problems.csv"
# Files rosterdrop itself writes into an import's folder: never part of an upload.
OWN_FILES = frozenset({MANIFEST, PROBLEMS})


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def claim(
    folder: Path,
    files: Mapping[str, Path],
    *,
    move: bool,
    others: list[str],
    twins: Sequence[Path] = (),
) -> dict[str, Any]:
    """Move (or copy) `files` into `folder` and write the manifest; returns the manifest.

    `twins`, older files whose names differ from one of the five only by case, go along: kept
    with the import (and its archive) rather than left to look like a new partial upload.
    Their times are kept, so the spool folder picks the same file of each pair again."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        manifest: dict[str, Any] = {
            "files": {}, "others": sorted(others), "twins": sorted(p.name for p in twins),
        }  # fmt: skip
        for source in (*files.values(), *twins):
            if move:
                os.replace(source, folder / source.name)
            else:
                shutil.copy2(source, folder / source.name)
        for name, source in files.items():
            size = (folder / source.name).stat().st_size
            manifest["files"][name] = {"name": source.name, "size": size}
        fsync_dir(folder)
        if move:
            fsync_dir(next(iter(files.values())).parent)
        write_atomically(folder / MANIFEST, json.dumps(manifest, indent=2).encode())
    except OSError as exc:
        raise SpoolError(f"could not claim the upload into {folder}: {exc}") from exc
    return manifest


def claimed(folder: Path) -> bool:
    return (folder / MANIFEST).exists()


def others(folder: Path) -> list[str]:
    """The files that sat beside the set when it was claimed (they stayed where they were)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpoolError(f"cannot read the manifest in {folder}: {exc}") from exc
    return [str(name) for name in manifest.get("others", [])]


def unclaim(folder: Path, upload_dir: Path | None) -> list[str]:
    """Undo an interrupted claim: files go back to the upload folder, unless a newer file of
    the same name arrived there since. Returns the names put back."""
    restored: list[str] = []
    if folder.is_dir():
        for path in folder.iterdir():
            if upload_dir is not None and path.name not in OWN_FILES:
                target = upload_dir / path.name
                if not target.exists():
                    upload_dir.mkdir(parents=True, exist_ok=True)
                    os.replace(path, target)
                    restored.append(path.name)
        shutil.rmtree(folder, ignore_errors=True)
    return restored


def archive(folder: Path, archive_root: Path) -> Path:
    """Move an ended import's folder into the archive (same file system: a rename)."""
    target = archive_root / folder.parent.name / folder.name
    if not folder.exists():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():  # a previous attempt copied part of it; the spool copy is complete
            shutil.rmtree(target)
        os.replace(folder, target)
    except OSError as exc:
        raise SpoolError(f"could not archive {folder}: {exc}") from exc
    return target


def expire(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
