"""Which format an upload is in (Clever's five files or a OneRoster set), finding its files
and validating them with that format's validator.

A tenant's `input_format` decides: "clever", "oneroster", or "auto" (the default), where a
folder holding a `manifest.csv` is OneRoster, and so is one holding a `.zip` and none of the
five Clever files.
"""

from __future__ import annotations

from pathlib import Path

from daemon.clever import validate as clever
from daemon.clever.files import FileFingerprint, FoundFiles, find_files
from daemon.errors import ConfigError
from daemon.oneroster import files as oneroster_files
from daemon.oneroster import validate as oneroster
from daemon.roster.entities import FILES
from daemon.roster.problems import ProblemLog
from daemon.roster.tenant import AUTO, CLEVER, ONEROSTER, TenantSettings


def detect(folder: Path) -> str:
    """The format of what is in `folder` when the tenant lets rosterdrop tell."""
    if oneroster_files.manifest_path(folder) is not None:
        return ONEROSTER
    try:
        names = {p.name.lower() for p in folder.iterdir()}
    except FileNotFoundError:
        return CLEVER
    if names.isdisjoint(FILES) and oneroster_files.zip_path(folder) is not None:
        return ONEROSTER
    return CLEVER


def find(folder: Path, input_format: str = AUTO) -> FoundFiles:
    """The set in `folder`, in the tenant's format (or the one detected)."""
    chosen = detect(folder) if input_format == AUTO else input_format
    if chosen == ONEROSTER:
        return oneroster_files.find_set(folder)
    return find_files(folder)


def find_path(path: Path, input_format: str = AUTO) -> FoundFiles:
    """`find` for a folder, or a OneRoster zip named directly (the CLI takes either)."""
    if path.is_file():
        if path.suffix.lower() != ".zip" or input_format == CLEVER:
            raise ConfigError(f"{path} is a file: give a folder (or a OneRoster set's .zip)")
        return FoundFiles(files={oneroster_files.ZIP_KEY: path}, format=ONEROSTER)
    return find(path, input_format)


def validate(
    found: FoundFiles,
    prints: dict[str, FileFingerprint],
    settings: TenantSettings,
    problems: ProblemLog,
    sink: clever.SnapshotSink,
    *,
    scratch: Path | None = None,
) -> clever.Validation:
    """Validate the set's files into `sink` with its format's validator (`prints`, the
    files' fingerprints as `clever.validate.fingerprints` makes them, saves a second pass)."""
    if found.format == ONEROSTER:
        return oneroster.validate(found, settings, problems, sink, scratch=scratch)
    return clever.validate(found, prints, settings, problems, sink)


__all__ = ["AUTO", "CLEVER", "ONEROSTER", "detect", "find", "find_path", "validate"]
