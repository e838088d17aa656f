"""The OneRoster CSV files rosterdrop reads: their columns, and finding a set in a folder.

A set is named by its `manifest.csv`: the files it lists as `bulk` (or `delta`) make the set
complete. Column names are matched case-insensitively, as Clever's are (`sourcedId` is read
as `sourcedid`); only the columns the mapping uses are named here, every other column of a
file (OneRoster's own `identifier`, `classCode`…, and `metadata.*` or `ext_*` extensions) is an
extra column, kept with its record under the same rules as Clever's.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from daemon.clever.files import FileSpec, FoundFiles

FORMAT = "oneroster"
MANIFEST = "manifest.csv"
ZIP_KEY = "zip"  # FoundFiles.files key of a set sent as one .zip
# The manifest is one small table of properties: more than this is not a manifest.
MAX_MANIFEST_BYTES = 64 << 10

ORGS = "orgs.csv"
USERS = "users.csv"
ROLES = "roles.csv"
SESSIONS = "academicSessions.csv"
COURSES = "courses.csv"
CLASSES = "classes.csv"
ENROLLMENTS = "enrollments.csv"
PROFILES = "userProfiles.csv"

_STATUS = ("status", "datelastmodified")
# OneRoster 1.2's users.csv, when roles.csv holds the roles.
USERS_12 = FileSpec(
    USERS, ("sourcedid", "givenname", "familyname"), ("username", "email", "grades", *_STATUS)
)
SPECS: dict[str, FileSpec] = {
    spec.filename: spec
    for spec in (
        FileSpec(ORGS, ("sourcedid", "name", "type"), _STATUS),
        # role and orgSourcedIds are OneRoster 1.1's; 1.2 moves them to roles.csv (validate
        # requires them here when there is no roles.csv).
        FileSpec(
            USERS,
            ("sourcedid", "givenname", "familyname"),
            ("role", "orgsourcedids", "username", "email", "grades", *_STATUS),
        ),
        FileSpec(
            ROLES,
            ("usersourcedid", "role", "orgsourcedid"),
            ("sourcedid", "roletype", *_STATUS),
        ),
        FileSpec(SESSIONS, ("sourcedid", "title", "type", "startdate", "enddate"), _STATUS),
        FileSpec(COURSES, ("sourcedid", "title"), _STATUS),
        FileSpec(
            CLASSES,
            ("sourcedid", "title", "coursesourcedid", "schoolsourcedid", "termsourcedids"),
            _STATUS,
        ),
        FileSpec(
            ENROLLMENTS,
            ("classsourcedid", "schoolsourcedid", "usersourcedid", "role"),
            ("sourcedid", "primary", *_STATUS),
        ),
    )
}
# Every file the manifest can name, by its manifest property (`file.users` -> users.csv).
KNOWN_FILES = (
    *(ORGS, USERS, ROLES, SESSIONS, COURSES, CLASSES, ENROLLMENTS, PROFILES),
    *("categories.csv", "classResources.csv", "courseResources.csv", "demographics.csv"),
    *("lineItems.csv", "resources.csv", "results.csv", "scoreScales.csv"),
    *("lineItemLearningObjectiveIds.csv", "lineItemScoreScales.csv"),
    *("resultLearningObjectiveIds.csv", "resultScoreScales.csv"),
)
BY_LOWER = {name.lower(): name for name in (MANIFEST, *KNOWN_FILES)}
# What the mapping cannot do without: absent from the manifest, the import fails.
REQUIRED = (ORGS, USERS, SESSIONS, COURSES, CLASSES, ENROLLMENTS)
READ = (*REQUIRED, ROLES)


@dataclass
class Manifest:
    """What manifest.csv says: the versions, and each file's mode (bulk, delta or absent)."""

    version: str = ""
    modes: dict[str, str] = field(default_factory=dict)  # canonical file name -> mode
    properties: dict[str, str] = field(default_factory=dict)
    unreadable: str | None = None  # why the manifest cannot be read at all

    def provided(self) -> list[str]:
        """The files the manifest says are in the set (bulk or delta)."""
        return [name for name, mode in self.modes.items() if mode in ("bulk", "delta")]


def read_manifest(data: bytes) -> Manifest:
    """Parse manifest.csv (propertyName,value rows). Never raises: a manifest that cannot
    be read says why in `unreadable`, and the set is claimed and fails with that reason."""
    manifest = Manifest()
    if len(data) > MAX_MANIFEST_BYTES:
        manifest.unreadable = (
            f"it is {len(data):,} bytes (a manifest is at most {MAX_MANIFEST_BYTES:,})"
        )
        return manifest
    try:
        text = data.decode("utf-8-sig")
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except (UnicodeDecodeError, csv.Error) as exc:
        manifest.unreadable = f"it cannot be read as UTF-8 CSV ({exc})"
        return manifest
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows or [c.strip().lower() for c in rows[0][:2]] != ["propertyname", "value"]:
        manifest.unreadable = "its header must be propertyName,value"
        return manifest
    for row in rows[1:]:
        name = row[0].strip()
        value = row[1].strip() if len(row) > 1 else ""
        manifest.properties[name.lower()] = value
        if name.lower().startswith("file."):
            file = BY_LOWER.get(name[5:].lower() + ".csv", name[5:] + ".csv")
            manifest.modes[file] = value.lower()
    manifest.version = manifest.properties.get("oneroster.version", "")
    return manifest


def manifest_path(folder: Path) -> Path | None:
    """The folder's manifest.csv (any case), or None."""
    try:
        for path in folder.iterdir():
            if path.name.lower() == MANIFEST and path.is_file():
                return path
    except FileNotFoundError:
        return None
    return None


def zip_path(folder: Path) -> Path | None:
    """The newest .zip in the folder, or None."""
    zips = [p for p in folder.iterdir() if p.suffix.lower() == ".zip" and p.is_file()]
    zips = [p for p in zips if not p.name.startswith(".")]
    return max(zips, key=lambda p: (p.stat().st_mtime, p.name)) if zips else None


def find_set(folder: Path) -> FoundFiles:
    """Match a folder's files to a OneRoster set: loose files named by the manifest, or one
    .zip (used when there is no loose manifest.csv). `missing` lists the files the manifest
    provides that are not there yet (the set is incomplete until they are)."""
    found = FoundFiles(format=FORMAT)
    manifest = manifest_path(folder)
    if manifest is None:
        archive = zip_path(folder)
        if archive is not None:
            found.files[ZIP_KEY] = archive
            found.others = sorted(
                p.name
                for p in folder.iterdir()
                if p.is_file() and p != archive and not p.name.startswith(".")
            )
        else:
            found.missing.append(MANIFEST)
        return found
    found.files[MANIFEST] = manifest
    try:
        modes = read_manifest(manifest.read_bytes())
    except OSError:
        modes = Manifest()
    by_lower = {
        p.name.lower(): p
        for p in sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime)
        if p.is_file() and not p.name.startswith(".")
    }
    for name in modes.provided():
        path = by_lower.get(name.lower())
        if path is None:
            found.missing.append(name)
        else:
            found.files[name] = path
    used = {p.name for p in found.files.values()}
    found.others = sorted(p.name for p in by_lower.values() if p.name not in used)
    return found
