"""A check's answer as people read it (`…-report.txt`) and as programs do (`…-report.json`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from daemon.dryrun import DryRun
from daemon.notify.figures import plural
from daemon.notify.problem_list import problem_lines
from daemon.notify.render import neutralise
from daemon.roster.entities import FILES
from daemon.roster.plan import EntityChanges
from daemon.roster.problems import Problem
from daemon.store.checks import CheckState

# The grouped problems the readable report lists; the CSV beside it holds every one.
REPORT_PROBLEM_LINES = 200
CHANGE_COLUMNS = ("active now", "add", "update", "reactivate", "deactivate", "unchanged", "held")


def verdict(dry_run: DryRun) -> str:
    """What sending these files to /upload would do, in one sentence."""
    if dry_run.fatal:
        return "An upload of these files would FAIL: nothing would be imported."
    if dry_run.tripped and all(t.rule == "window" for t in dry_run.tripped):
        return (
            "An upload of these files would be HELD by a pause window: checked now, applied"
            " when the window ends (or earlier if someone approves it)."
        )
    if dry_run.tripped:
        return (
            "An upload of these files would PAUSE for review: nothing would change until"
            " someone approves it."
        )
    if dry_run.problem_totals.get("error", 0):
        return "An upload of these files would be IMPORTED, skipping the rows with errors."
    return "An upload of these files would be IMPORTED."


def outcome(dry_run: DryRun) -> str:
    """One word for lists: fail, pause or import."""
    if dry_run.fatal:
        return "fail"
    return "pause" if dry_run.tripped else "import"


def as_json(
    check_id: int, tenant: str, received_at: datetime, name: str, dry_run: DryRun
) -> dict[str, Any]:
    return {
        "check": check_id,
        "tenant": tenant,
        "state": str(CheckState.CHECKED),
        "received_at": received_at.isoformat(),
        "outcome": outcome(dry_run),
        "verdict": verdict(dry_run),
        "problems_csv": f"{name}-problems.csv",
        **dry_run.as_dict(),
    }


def failure_json(check_id: int, tenant: str, received_at: datetime, error: str) -> dict[str, Any]:
    return {
        "check": check_id,
        "tenant": tenant,
        "state": str(CheckState.FAILED),
        "received_at": received_at.isoformat(),
        "outcome": "error",
        "verdict": f"The check could not be completed: {error}",
    }


def as_text(answer: Mapping[str, Any]) -> str:
    """The readable report of a check's JSON answer (the one source of both files)."""
    received = datetime.fromisoformat(answer["received_at"]).strftime("%Y-%m-%d %H:%M:%S %Z")
    lines = [
        f"rosterdrop check #{answer['check']} of {answer['tenant']}, received {received}",
        "Validated and planned against the roster as it was then. Nothing was imported:",
        "this is what uploading the same files to /upload would do.",
        "",
        answer["verdict"],
    ]
    if answer["state"] != str(CheckState.CHECKED):
        return "\n".join(lines) + "\n"
    lines += ["", "FILES", _table(("file", "rows", "errors", "warnings"), _file_rows(answer))]
    entities = answer["entities"]
    lines += ["", "WHAT AN IMPORT WOULD CHANGE"]
    if entities:
        rows = [[name, *_change_cells(EntityChanges.from_dict(c))] for name, c in entities.items()]
        lines.append(_table(("records", *CHANGE_COLUMNS), rows))
    else:
        lines.append("  nothing can be planned until the fatal problems below are fixed")
    lines += ["", "THRESHOLDS THAT WOULD PAUSE THE IMPORT"]
    lines += [f"  - {t['message']}" for t in answer["tripped"]] or ["  none"]
    lines += ["", *_problem_text(answer)]
    return "\n".join(lines) + "\n"


def file_names(answer: Mapping[str, Any]) -> list[str]:
    """The files a check's answer lists: Clever's five (one not read shown as such), or a
    OneRoster set's as its validator named them (`users.csv (students)`, …)."""
    named = [str(f["file"]) for f in answer["files"]]
    return list(FILES) if set(named) <= set(FILES) else named


def _file_rows(answer: Mapping[str, Any]) -> list[list[object]]:
    seen = {f["file"]: f for f in answer["files"]}
    return [
        [name, seen[name]["rows"], seen[name]["errors"], seen[name]["warnings"]]
        if name in seen
        else [name, "-", "-", "-"]
        for name in file_names(answer)
    ]


def _change_cells(c: EntityChanges) -> list[object]:
    return [c.active_before, c.added, c.updated, c.reactivated, c.deactivated, c.unchanged, c.held]


def _problem_text(answer: Mapping[str, Any]) -> list[str]:
    totals = answer["problem_totals"]
    counts = ", ".join(plural(n, s) for s, n in totals.items() if n) or "none"
    lines = [f"PROBLEMS ({counts}; every one is in {answer['problems_csv']})"]
    grouped = problem_lines([Problem.from_dict(p) for p in answer["problems"]])
    for line in grouped[:REPORT_PROBLEM_LINES]:
        repeats = f"{line.repeats}: " if line.repeats else ""
        value = f' (value: "{line.value}")' if line.value else ""
        # Values from the files are untrusted: one line each, whatever they hold.
        text = f"{line.location}: {line.severity}: {repeats}{line.message}{value}"
        lines.append(f"  - {neutralise(text)}")
    if len(grouped) > REPORT_PROBLEM_LINES:
        lines.append(f"  … and {len(grouped) - REPORT_PROBLEM_LINES:,} more lines in the CSV")
    return lines


def _table(header: tuple[str, ...], rows: list[list[object]]) -> str:
    cells = [list(header), *([_cell(v) for v in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    out = []
    for row in cells:
        first, *rest = row
        out.append(
            "  "
            + first.ljust(widths[0])
            + "".join(f"  {v.rjust(w)}" for v, w in zip(rest, widths[1:], strict=True))
        )
    return "\n".join(out)


def _cell(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)
