"""Whole batches of plain rows checked with the loops in C.

Each function gives the records of a batch whose rows all pass, exactly as the careful path in
`checks` would produce them, or None when something in the batch needs that careful path.
State (ids seen, notes) changes only when a batch passes.
"""

from __future__ import annotations

import operator
import re
import weakref
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from json.encoder import encode_basestring as json_string
from operator import itemgetter

from daemon.clever.cells import MAX_ID, Row
from daemon.clever.checks import Checker
from daemon.clever.reader import CsvFile
from daemon.clever.values import MAX_EMAIL, email_list, parse_date
from daemon.roster.entities import ENROLLMENTS, SECTIONS, STUDENTS, TEACHERS, Entity

# Characters the careful path would clean up: controls and white space other than a space.
_UNUSUAL = re.compile(r"[\x01-\x1f\x7f\x85\xa0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000]")
_EMAILS = {
    (optional, ascii_only): email_list(optional=optional, ascii_only=ascii_only)
    for optional in (False, True)
    for ascii_only in (False, True)
}


def _tidy(rows: list[list[str]]) -> bool:
    """No value in the batch has control characters or white space around it."""
    joined = "\x00".join(chain.from_iterable(rows))
    return (
        _UNUSUAL.search(joined) is None
        and " \x00" not in joined
        and "\x00 " not in joined
        and joined[:1] != " "
        and joined[-1:] != " "
    )


def _column(f: CsvFile, rows: list[list[str]], name: str) -> list[str]:
    position = f.index.get(name)
    if position is None:
        return [""] * len(rows)
    return list(map(itemgetter(position), rows))


def _new_keys(c: Checker, f: CsvFile, keys: list[tuple[str, str]]) -> bool:
    """No key repeats inside the batch or one seen earlier in the file."""
    return len(set(keys)) == len(keys) and c.seen[f.name].keys().isdisjoint(keys)


def _extras(
    c: Checker, f: CsvFile, lines: Sequence[int], rows: list[list[str]]
) -> Sequence[str | None]:
    if not f.extra or not c.settings.keep_extra_columns:
        return [None] * len(rows)
    columns = [list(map(itemgetter(pos), rows)) for pos, _ in f.extra]
    if not all(map(all, columns)):
        return [c.extras_json(f, line, fields) for line, fields in zip(lines, rows, strict=True)]
    names = (json_string(name).replace("{", "{{").replace("}", "}}") for _, name in f.extra)
    template = "{{" + ", ".join(f"{name}: {{}}" for name in names) + "}}"
    return list(map(template.format, *(map(json_string, column) for column in columns)))


def _replacements(
    values: list[str], mapping: dict[str, str], lines: Sequence[int]
) -> list[tuple[str, str, int, int]]:
    """(value, replacement, first line, count) for each value of `values` the mapping changes
    (the mapping may hold values of other columns too)."""
    changed = [v for v in mapping if mapping[v] != v and v]
    if not changed:
        return []
    counts = Counter(values)
    return [(v, mapping[v], lines[values.index(v)], counts[v]) for v in changed if v in counts]


def plain_people(
    c: Checker, f: CsvFile, entity: Entity, lines: Sequence[int], rows: list[list[str]]
) -> list[Row] | None:
    student = entity is STUDENTS
    if not _tidy(rows):
        return None
    school, ids, first, last = (
        _column(f, rows, name) for name in (*entity.key, "first_name", "last_name")
    )
    email = _column(f, rows, "student_email" if student else "teacher_email")
    username = _column(f, rows, "username") if student else []
    grade = _column(f, rows, "grade") if student else []
    required = [school, ids, first, last] if student else [school, ids, first, last, email]
    if not all(map(all, required)) or max(map(len, chain(*required, username, grade))) > MAX_ID:
        return None
    keys = list(zip(school, ids, strict=True))
    if not set(school) <= c.schools or not _new_keys(c, f, keys):
        return None
    joined = "\n".join(email)
    if max(map(len, email)) > MAX_EMAIL or not _EMAILS[(student, joined.isascii())].fullmatch(
        joined
    ):
        return None
    grades: dict[str, str] = {}
    if student:
        if not all(map(operator.add, email, username)):
            return None
        for value in set(grade):
            code = c.grade_code(value) if value else ""
            if code is None:
                return None
            grades[value] = code
    # Everything passed: the batch's side effects happen now, as the careful path's would.
    lowered = joined.lower()
    if lowered != joined:
        old, email = email, lowered.split("\n")
        changed = list(map(operator.ne, old, email))
        first_at = changed.index(True)
        column = "student_email" if student else "teacher_email"
        c.notes.note(
            f.name,
            column,
            "email_lowercased",
            "email addresses lower-cased",
            lines[first_at],
            old[first_at],
            sum(changed),
        )
    for value, code, line, count in _replacements(grade, grades, lines):
        c.note_grade(f, line, value, code, count)
    if any(grades[v] != v for v in grades):
        grade = list(map(grades.__getitem__, grade))
    c.seen[f.name].update(zip(keys, lines, strict=True))
    c.known(entity).update(keys)
    logins = (email, username, grade) if student else (email,)
    extras = _extras(c, f, lines, rows)
    return list(
        zip(
            school,
            ids,
            first,
            last,
            *logins,
            extras,
            lines,
            repeat(False),
            repeat(None),
            strict=False,
        )
    )


def plain_sections(
    c: Checker, f: CsvFile, lines: Sequence[int], rows: list[list[str]]
) -> tuple[list[Row], list[Row]] | None:
    if not _tidy(rows):
        return None
    school, section, primary, course = (
        _column(f, rows, name) for name in ("school_id", "section_id", "teacher_id", "course_name")
    )
    co_teachers = [(n, _column(f, rows, name)) for n, name in f.co_teachers]
    required = [school, section, primary, course]
    texts = chain(*required, *(column for _, column in co_teachers))
    if not all(map(all, required)) or max(map(len, texts)) > MAX_ID:
        return None
    keys = list(zip(school, section, strict=True))
    if not set(school) <= c.schools or not _new_keys(c, f, keys):
        return None
    teachers = set(zip(school, primary, strict=True))
    for _, column in co_teachers:
        teachers.update(pair for pair in zip(school, column, strict=True) if pair[1])
    if not teachers <= c.teachers or not teachers.isdisjoint(c.held[TEACHERS.name]):
        return None
    if co_teachers and any(
        len(set(names)) != len(names)
        for names in (
            [t for t in row if t]
            for row in zip(primary, *(column for _, column in co_teachers), strict=True)
        )
    ):
        return None
    dates = {}
    columns = {name: _column(f, rows, name) for name in ("term_start", "term_end")}
    for value in set(columns["term_start"]) | set(columns["term_end"]):
        parsed = parse_date(value) if value else None
        if value and (parsed is None or len(value) > MAX_ID):
            return None
        dates[value] = parsed.isoformat() if parsed else ""
    start, end = (list(map(dates.__getitem__, columns[n])) for n in ("term_start", "term_end"))
    if any(s > e for s, e in zip(start, end, strict=True) if s and e):
        return None
    for name, column in columns.items():
        for value, _, line, count in _replacements(column, dates, lines):
            c.note_date(f, name, line, value, count)
    c.seen[f.name].update(zip(keys, lines, strict=True))
    c.sections.update(keys)
    extras = _extras(c, f, lines, rows)
    sections = list(
        zip(
            school,
            section,
            primary,
            course,
            [s or None for s in start],
            [e or None for e in end],
            extras,
            lines,
            repeat(False),
            repeat(None),
            strict=False,
        )
    )
    links = list(
        zip(school, section, primary, repeat(1), lines, repeat(False), repeat(None), strict=False)
    )
    for n, column in co_teachers:
        links.extend(
            (s, sec, t, n, line, False, None)
            for s, sec, t, line in zip(school, section, column, lines, strict=True)
            if t
        )
    return sections, links


@dataclass(frozen=True)
class _IdSchools:
    """Which school each section and student id belongs to, for ids found in one school only
    (None marks an id used by several schools): lets a batch be checked column by column."""

    sections: dict[str, str | None]
    students: dict[str, str | None]
    held_sections: frozenset[str]
    held_students: frozenset[str]


def _owners(keys: set[tuple[str, ...]]) -> dict[str, str | None]:
    owners: dict[str, str | None] = {}
    for school, ident in keys:
        owners[ident] = school if owners.get(ident, school) == school else None
    return owners


_ID_SCHOOLS: weakref.WeakKeyDictionary[Checker, _IdSchools] = weakref.WeakKeyDictionary()


def _id_schools(c: Checker) -> _IdSchools:
    """Built once per upload, when sections and students are all known."""
    if c not in _ID_SCHOOLS:
        _ID_SCHOOLS[c] = _IdSchools(
            _owners(c.sections),
            _owners(c.students),
            frozenset(ident for _, ident in c.held[SECTIONS.name]),
            frozenset(ident for _, ident in c.held[STUDENTS.name]),
        )
    return _ID_SCHOOLS[c]


def plain_enrollments(
    c: Checker, f: CsvFile, lines: Sequence[int], rows: list[list[str]]
) -> tuple[list[Row], list[int]]:
    """The records of the rows that pass, and the indexes of the rows that need care."""
    school, section, student = (list(map(itemgetter(f.index[n]), rows)) for n in ENROLLMENTS.key)
    ids = _id_schools(c)
    if (
        list(map(ids.sections.get, section)) == school
        and list(map(ids.students.get, student)) == school
        and ids.held_sections.isdisjoint(section)
        and ids.held_students.isdisjoint(student)
    ):
        # Every section and student is known, in the row's school, and none was skipped.
        return list(
            zip(school, section, student, lines, repeat(False), repeat(None), strict=False)
        ), []
    sections = list(zip(school, section, strict=True))
    students = list(zip(school, student, strict=True))
    ok = list(
        map(
            operator.and_,
            map(c.sections.__contains__, sections),
            map(c.students.__contains__, students),
        )
    )
    for held, keys in ((c.held[SECTIONS.name], sections), (c.held[STUDENTS.name], students)):
        if held and not held.keys().isdisjoint(keys):
            ok = list(map(operator.and_, ok, map(operator.not_, map(held.__contains__, keys))))
    records = zip(school, section, student, lines, repeat(False), repeat(None), strict=False)
    if all(ok):
        return list(records), []
    passed = [record for record, good in zip(records, ok, strict=False) if good]
    return passed, [i for i, good in enumerate(ok) if not good]
