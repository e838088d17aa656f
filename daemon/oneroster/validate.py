"""Validating a OneRoster set: the manifest, then each file in parent-to-child order, records
out to the same sink (`clever.validate.SnapshotSink`) the Clever files fill.

Manifest semantics (docs/oneroster.md): `bulk` is a full snapshot, with the same deactivation
rules and thresholds as a Clever upload; `absent` means not provided: a file the mapping needs
(orgs, users, academicSessions, courses, classes, enrollments) absent is fatal, since a
snapshot without it would deactivate every record it holds; `delta` is refused (fatal) with a
message saying to send a bulk set.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from daemon.clever.files import FileFingerprint, FileSpec, FoundFiles, fingerprint
from daemon.clever.header import open_csv
from daemon.clever.reader import CsvFile
from daemon.clever.validate import SnapshotSink, Validation
from daemon.oneroster import archive
from daemon.oneroster.classes import OTHERS_BUCKET, STUDENTS_BUCKET, TEACHERS_BUCKET, Classes
from daemon.oneroster.files import (
    CLASSES,
    COURSES,
    ENROLLMENTS,
    MANIFEST,
    ORGS,
    PROFILES,
    READ,
    REQUIRED,
    ROLES,
    SESSIONS,
    SPECS,
    USERS,
    USERS_12,
    ZIP_KEY,
    Manifest,
    read_manifest,
)
from daemon.oneroster.people import OTHER_ROLES, bucket
from daemon.roster.entities import (
    ENROLLMENTS as ENROLLMENT,
)
from daemon.roster.entities import (
    SCHOOLS,
    SECTION_TEACHERS,
    SECTIONS,
    STUDENTS,
    TEACHERS,
)
from daemon.roster.outcome import FileSummary
from daemon.roster.problems import ProblemLog
from daemon.roster.tenant import TenantSettings

VERSIONS = ("1.1", "1.2")
# A zip's files are unpacked into a hidden folder of this name (the watcher skips hidden names).
UNPACKED_PREFIX = ".oneroster-"
# Each line of the per-file table: its label, the file, and the entity its rows are.
SUMMARIES: tuple[tuple[str, str, str | None], ...] = (
    (ORGS, ORGS, SCHOOLS.name),
    (bucket(USERS, TEACHERS.name), USERS, TEACHERS.name),
    (bucket(USERS, STUDENTS.name), USERS, STUDENTS.name),
    (bucket(USERS, OTHER_ROLES), USERS, None),
    (ROLES, ROLES, None),
    (SESSIONS, SESSIONS, None),
    (COURSES, COURSES, None),
    (CLASSES, CLASSES, SECTIONS.name),
    (TEACHERS_BUCKET, ENROLLMENTS, SECTION_TEACHERS.name),
    (STUDENTS_BUCKET, ENROLLMENTS, ENROLLMENT.name),
    (OTHERS_BUCKET, ENROLLMENTS, None),
)


def validate(
    found: FoundFiles,
    settings: TenantSettings,
    problems: ProblemLog,
    sink: SnapshotSink,
    *,
    scratch: Path | None = None,
    limits: archive.ZipLimits = archive.DEFAULT_LIMITS,
) -> Validation:
    """Validate a OneRoster set (loose files, or the one zip) into `sink`. A zip is unpacked
    into a folder under `scratch` (the system's temporary folder by default), removed after."""
    with _unpacked(found, problems, scratch, limits) as files:
        if files is None:
            return Validation(fatal=True)
        return _Validator(settings, problems, sink).run(files, found.others)


@contextmanager
def _unpacked(
    found: FoundFiles, problems: ProblemLog, scratch: Path | None, limits: archive.ZipLimits
) -> Iterator[dict[str, Path] | None]:
    zipped = found.files.get(ZIP_KEY)
    if zipped is None:
        yield dict(found.files)
        return
    if scratch is not None:  # what an attempt that crashed while validating left behind
        for stale in scratch.glob(f"{UNPACKED_PREFIX}*"):
            archive.remove(stale)
    with tempfile.TemporaryDirectory(prefix=UNPACKED_PREFIX, dir=scratch) as target:
        try:
            files = archive.unpack(zipped, Path(target), limits)
        except archive.ZipRefused as exc:
            problems.fatal(exc.code, str(exc), file=zipped.name[:64], value=exc.member)
            yield None
            return
        if MANIFEST not in files:
            message = "the zip has no manifest.csv: a OneRoster set starts with its manifest"
            problems.fatal("missing_file", message, file=zipped.name[:64])
            yield None
            return
        yield files


class _Validator:
    def __init__(self, settings: TenantSettings, problems: ProblemLog, sink: SnapshotSink) -> None:
        self.settings = settings
        self.problems = problems
        self.sink = sink
        self.c = Classes(settings, problems, lambda entity, row: sink.skipped(entity).append(row))
        self.rows: Counter[str] = Counter()
        self.read: list[str] = []

    def run(self, files: dict[str, Path], others: list[str]) -> Validation:
        result = Validation()
        manifest = self._manifest(files)
        if manifest is None or self.problems.has_fatal():
            result.fatal = True
            return result
        if others:
            self.problems.warning(
                "other_files", "files that are not part of the OneRoster set were left alone: "
                + ", ".join(others)
            )  # fmt: skip
        self.c.version = manifest.version
        opened: dict[str, CsvFile] = {}
        try:
            for name in READ:
                if name in files:
                    spec = USERS_12 if name == USERS and ROLES in files else SPECS[name]
                    csv_file = self._open(spec, files[name])
                    if csv_file is not None:
                        opened[name] = csv_file
            if self.problems.has_fatal():
                result.fatal = True
                return result
            self._check_roles_source(opened)
            if self.problems.has_fatal():
                result.fatal = True
                return result
            self._read_all(opened, files)
        finally:
            for csv_file in opened.values():
                csv_file.close()
        if self.problems.has_fatal():
            result.fatal = True
            return result
        for line, first in self.sink.duplicates(ENROLLMENT):
            self.problems.warning(
                "duplicate_row", f"the same enrollment as line {first}; ignored",
                file=ENROLLMENTS, line=line,
            )  # fmt: skip
        result.files = self._summaries()
        return result

    # -- the manifest ------------------------------------------------------------------------

    def _manifest(self, files: dict[str, Path]) -> Manifest | None:
        path = files.get(MANIFEST)
        if path is None:
            self.problems.fatal("missing_file", "manifest.csv is missing", file=MANIFEST)
            return None
        manifest = read_manifest(path.read_bytes())
        if manifest.unreadable:
            message = f"manifest.csv cannot be read: {manifest.unreadable}"
            self.problems.fatal("bad_manifest", message, file=MANIFEST, line=1)
            return None
        if manifest.version not in VERSIONS:
            shown = repr(manifest.version) if manifest.version else "missing"
            message = (
                f"oneroster.version is {shown}: rosterdrop reads OneRoster 1.1 and 1.2 CSV"
                f" ({', '.join(VERSIONS)})"
            )
            self.problems.fatal("bad_manifest", message, file=MANIFEST, column="oneroster.version")
            return None
        for name, mode in manifest.modes.items():
            prop = "file." + name.removesuffix(".csv")
            if mode not in ("bulk", "delta", "absent"):
                message = f"{prop} is {mode!r}: a file is bulk, delta or absent"
                self.problems.fatal("bad_manifest", message, file=MANIFEST, column=prop, value=mode)
            elif mode == "delta":
                message = (
                    f"{prop} is delta: rosterdrop imports OneRoster bulk sets only (each upload"
                    " is the full snapshot); set the export to bulk"
                )
                self.problems.fatal("delta_refused", message, file=MANIFEST, column=prop)
            elif mode == "bulk" and name not in files:
                message = f"manifest.csv says {name} is in the set ({prop} bulk), but it is not"
                self.problems.fatal("missing_file", message, file=name)
        for name in REQUIRED:
            if manifest.modes.get(name, "absent") == "absent":
                prop = "file." + name.removesuffix(".csv")
                message = (
                    f"{name} is absent ({prop}): rosterdrop needs it, since a snapshot"
                    f" without it would deactivate every {_WHAT[name]}"
                )
                self.problems.fatal("absent_file", message, file=MANIFEST, column=prop)
        for name in manifest.provided():
            if name == PROFILES:
                message = (
                    "userProfiles.csv was not read: it holds login profiles and passwords,"
                    " which rosterdrop never reads or stores"
                )
                self.problems.warning("secret_file", message, file=name)
            elif name not in READ and name in files:
                message = f"{name} is not part of the roster: not read"
                self.problems.warning("unused_file", message, file=name)
        return manifest

    def _check_roles_source(self, opened: dict[str, CsvFile]) -> None:
        """Roles come from roles.csv when the set has it (1.2), else from users.csv's role and
        orgSourcedIds columns (1.1), which are then required."""
        users = opened.get(USERS)
        if ROLES in opened:
            self.c.roles = {}
            return
        if users is None:
            return
        for column, shown in (("role", "role"), ("orgsourcedids", "orgSourcedIds")):
            if column not in users.index:
                message = (
                    f"required column {shown!r} is missing from the header (and there is no"
                    " roles.csv)"
                )
                self.problems.fatal(
                    "missing_column", message, file=USERS, line=users.header_line, column=shown
                )

    def _open(self, spec: FileSpec, path: Path, log: ProblemLog | None = None) -> CsvFile | None:
        prints: FileFingerprint = fingerprint(path)
        f = open_csv(
            spec, path, prints, self.settings.fallback_encoding, log or self.problems,
            self.settings.secret_columns,
        )  # fmt: skip
        if f is not None:  # extras keep the header's spelling (`classCode`, `metadata.lang`)
            f.extra = sorted(((pos, f.header[pos].strip()) for pos, _ in f.extra), key=_name)
        return f

    # -- the files ---------------------------------------------------------------------------

    def _read_all(self, opened: dict[str, CsvFile], files: dict[str, Path]) -> None:
        c = self.c
        writers = {e.name: self.sink.writer(e).append for e in (TEACHERS, STUDENTS)}
        school = self.sink.writer(SCHOOLS).append
        steps: list[tuple[str, Callable[[CsvFile, int, list[str]], None]]] = [
            (ORGS, lambda f, line, row: c.org_row(f, line, row, school)),
            (ROLES, c.role_row),
            (USERS, lambda f, line, row: c.user_row(f, line, row, writers)),
            (SESSIONS, c.session_row),
            (COURSES, c.course_row),
            (CLASSES, c.class_row),
        ]
        for name, step in steps:
            if name not in opened or self.problems.has_fatal():
                continue
            self._each_row(opened[name], step)
            if name == USERS and ROLES in opened:
                c.roles_without_user(opened[ROLES])
        if self.problems.has_fatal() or ENROLLMENTS not in opened:
            return
        f = opened[ENROLLMENTS]
        self._each_row(f, c.teacher_pass, count=False)
        c.write_sections(
            self.sink.writer(SECTIONS).append, self.sink.writer(SECTION_TEACHERS).append
        )
        f.close()
        # The second pass reads the file again: its header's problems were logged once.
        again = self._open(f.spec, files[ENROLLMENTS], ProblemLog())
        if again is None:
            return
        opened[ENROLLMENTS] = again
        enroll = self.sink.writer(ENROLLMENT).append
        self._each_row(
            again, lambda f, line, row: c.student_pass(f, line, row, enroll), blanks=False
        )

    def _each_row(
        self,
        f: CsvFile,
        step: Callable[[CsvFile, int, list[str]], object],
        *,
        count: bool = True,
        blanks: bool = True,
    ) -> None:
        self._report_columns(f, count)
        for line, fields in f.records(
            self.problems if count else ProblemLog(), self._misshapen(f, count)
        ):
            self.c.bucket = f.name
            if f.name == USERS:
                self.c.bucket = ""  # user_role sets it
            step(f, line, fields)
            # Teachers' enrollments are counted by the first pass, the others by the second.
            if count != (self.c.bucket == TEACHERS_BUCKET):
                self.rows[self.c.bucket or f.name] += 1
        self.c.notes.flush(self.problems)
        if blanks and f.blank_rows:
            rows = f"{f.blank_rows:,} blank row{'s' if f.blank_rows != 1 else ''}"
            message = f"{rows} ignored (first on line {f.first_blank_line})"
            self.problems.warning("blank_rows", message, file=f.name, line=f.first_blank_line)
        if f.rows == 0 and f.name != ROLES and count and not self.problems.has_fatal():
            self.problems.fatal("empty_file", "the file has a header but no data rows", file=f.name)

    def _misshapen(self, f: CsvFile, log: bool) -> Callable[[int, list[str]], None]:
        def report(line: int, fields: list[str]) -> None:
            if not log:
                return
            message = f"the row has {len(fields)} values but the header has {f.width} columns"
            # A row that cannot be read has no role to tell which entity it was for.
            self.c.bucket = _UNREAD.get(f.name, f.name)
            self.rows[self.c.bucket] += 1
            self.c.error(f, line, None, None, "wrong_field_count", message)

        return report

    def _report_columns(self, f: CsvFile, log: bool) -> None:
        if not f.extra or not log:
            return
        names = ", ".join(name for _, name in f.extra)
        kept = f.name in (ORGS, USERS, CLASSES) and self.settings.keep_extra_columns
        message = f"extra columns {'kept with each record' if kept else 'ignored'}: {names}"
        self.problems.warning("extra_columns", message, file=f.name, line=f.header_line)

    def _summaries(self) -> dict[str, FileSummary]:
        summaries: dict[str, FileSummary] = {}
        warned: set[str] = set()
        for label, file, entity in SUMMARIES:
            rows = self.rows.get(label, 0)
            errors = self.c.error_rows.get(label, 0)
            if not rows and not errors and entity is None:
                continue  # no parents in the set, no roles.csv: no line of its own
            warnings = 0 if file in warned else self.problems.warnings_by_file[file]
            warned.add(file)
            summaries[label] = FileSummary(label, rows, errors, warnings, entity)
        return summaries


_UNREAD = {USERS: bucket(USERS, OTHER_ROLES), ENROLLMENTS: OTHERS_BUCKET}


def _name(item: tuple[int, str]) -> str:
    return item[1]


_WHAT: dict[str, str] = {
    ORGS: "school (and so every record of the roster)",
    USERS: "student and teacher",
    SESSIONS: "section's term (classes name their terms)",
    COURSES: "section (classes name their course)",
    CLASSES: "section and enrollment",
    ENROLLMENTS: "enrollment and section teacher",
}
