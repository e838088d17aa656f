"""What the CLI prints: readable reports for people, and the JSON documented in docs/cli.md."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from daemon.clever.validate import Validation
from daemon.roster.entities import BY_NAME, ENTITIES
from daemon.roster.outcome import FileSummary, ImportReport, ImportState, format_label
from daemon.roster.plan import EntityChanges, Plan
from daemon.roster.problems import Problem, ProblemLog
from daemon.roster.thresholds import TrippedThreshold
from daemon.store.imports import ImportRecord
from daemon.store.tenants import Tenant

Echo = Callable[[str], None]
SHOWN_PROBLEMS = 50
COUNTS = ("added", "updated", "reactivated", "deactivated", "unchanged", "held")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _table(echo: Echo, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    text = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in text) for i in range(len(header))]
    for n, row in enumerate(text):
        cells = [
            row[0].ljust(widths[0]),
            *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)),
        ]
        echo("  " + "  ".join(cells).rstrip())
        if n == 0:
            echo("  " + "  ".join("-" * w for w in widths))


# -- problems --------------------------------------------------------------------------------


def problem_json(problem: Problem) -> dict[str, Any]:
    return problem.as_dict()


def print_problems(echo: Echo, problems: Sequence[Problem], total: int, more_hint: str) -> None:
    for problem in problems[:SHOWN_PROBLEMS]:
        echo(f"  {problem}")
    hidden = total - min(len(problems), SHOWN_PROBLEMS)
    if hidden > 0:
        echo(f"  … and {hidden} more {more_hint}")


# -- validate --------------------------------------------------------------------------------


def validation_json(validation: Validation, problems: ProblemLog) -> dict[str, Any]:
    return {
        "ok": not validation.fatal and problems.error_count == 0,
        "files": {name: _file_json(summary) for name, summary in validation.files.items()},
        "problem_totals": problems.totals(),
        "problems": [problem_json(p) for p in problems.kept],
        "problems_total": problems.total,
    }


def _file_json(summary: FileSummary) -> dict[str, int]:
    return {"rows": summary.rows, "errors": summary.errors, "warnings": summary.warnings}


def print_validation(echo: Echo, validation: Validation, problems: ProblemLog) -> None:
    if validation.files:
        _table(
            echo,
            ("file", "rows", "errors", "warnings"),
            ((n, f.rows, f.errors, f.warnings) for n, f in validation.files.items()),
        )
        echo("")
    totals = problems.totals()
    if validation.fatal:
        echo("FAILED: the upload cannot be imported")
    elif problems.error_count:
        echo(f"{problems.error_count} error(s): those rows would be skipped")
    else:
        echo("OK: the upload is valid")
    echo(f"{totals['fatal']} fatal, {totals['error']} errors, {totals['warning']} warnings")
    print_problems(echo, problems.kept, problems.total, "(see --json for all)")


# -- plans and imports -----------------------------------------------------------------------


def _counts_json(changes: EntityChanges, errors: int) -> dict[str, Any]:
    return {**changes.as_dict(), "errors": errors}


def _errors_by_entity(files: Mapping[str, FileSummary]) -> dict[str, int]:
    return {e.name: sum(f.errors for f in files.values() if f.feeds(e)) for e in ENTITIES}


def plan_json(plan: Plan | None, files: Mapping[str, FileSummary]) -> dict[str, Any]:
    if plan is None:
        return {}
    errors = _errors_by_entity(files)
    return {name: _counts_json(c, errors[name]) for name, c in plan.entities.items()}


def import_json(report: ImportReport) -> dict[str, Any]:
    files = {f.file: f for f in report.files}
    errors = _errors_by_entity(files)
    return {
        "id": report.import_id,
        "tenant": report.tenant,
        "state": report.state.value,
        "source": report.source,
        "source_format": report.source_format,
        "received_at": _iso(report.received_at),
        "started_at": _iso(report.started_at),
        "finished_at": _iso(report.finished_at),
        "counts": {n: _counts_json(c, errors[n]) for n, c in report.entities.items()},
        "files": {n: _file_json(f) for n, f in files.items()},
        "tripped": [t.as_dict() for t in report.tripped],
        "fatal_reason": report.fatal_reason,
        "decided_by": report.decided_by,
        "superseded_by": report.superseded_by,
        "problem_totals": dict(report.problem_totals),
        "problems": [problem_json(p) for p in report.problems],
        "report_csv": str(report.report_csv) if report.report_csv else None,
    }


def print_plan(echo: Echo, plan: Plan, files: Mapping[str, FileSummary]) -> None:
    errors = _errors_by_entity(files)
    rows = []
    for entity in ENTITIES:
        c = plan.entities[entity.name]
        rows.append((entity.name, *(getattr(c, k) for k in COUNTS), errors[entity.name]))
    _table(echo, ("entity", *COUNTS, "errors"), rows)
    for entity in ENTITIES:
        fields = plan.entities[entity.name].field_changes
        if fields:
            changed = ", ".join(f"{f} {n}" for f, n in sorted(fields.items(), key=lambda i: -i[1]))
            echo(f"  {entity.name} updated fields: {changed}")


def print_tripped(echo: Echo, tripped: Sequence[TrippedThreshold]) -> None:
    for threshold in tripped:
        echo(f"  - {threshold.describe()}")


def print_import(echo: Echo, report: ImportReport) -> None:
    state = report.state.value.replace("_", " ")
    echo(f"import #{report.import_id} for {report.tenant}: {state}")
    echo(f"  format: {format_label(report.source_format)}")
    if report.fatal_reason:
        echo(f"  {report.fatal_reason}")
    if report.superseded_by:
        echo(f"  superseded by import #{report.superseded_by}")
    if report.entities:
        echo("")
        print_plan(echo, _plan_of(report), {f.file: f for f in report.files})
    if report.tripped:
        echo("")
        if report.state is ImportState.PAUSED:
            echo("paused because the import")
        else:
            echo(f"{report.decided_by or 'someone'} decided after it paused because it")
        print_tripped(echo, report.tripped)
        if report.state is ImportState.PAUSED:
            echo("")
            echo(f"  approve: rosterdrop imports approve {report.import_id}")
            echo(f"  reject:  rosterdrop imports reject {report.import_id}")
    total = sum(report.problem_totals.values())
    if total:
        echo("")
        echo(", ".join(f"{n} {k}" for k, n in report.problem_totals.items()))
        hint = f"(full list: {report.report_csv})" if report.report_csv else ""
        print_problems(echo, report.problems, total, hint)


def _plan_of(report: ImportReport) -> Plan:
    return Plan(dict(report.entities), first_import=False)


def imports_json(records: Sequence[ImportRecord]) -> list[dict[str, Any]]:
    return [
        {
            "id": r.id,
            "tenant": r.tenant,
            "state": r.state.value,
            "source": r.source,
            "source_format": r.source_format,
            "received_at": _iso(r.received_at),
            "finished_at": _iso(r.finished_at),
            "problem_totals": r.problem_totals or {},
        }
        for r in records
    ]


def print_imports(echo: Echo, records: Sequence[ImportRecord]) -> None:
    if not records:
        echo("no imports yet")
        return
    _table(
        echo,
        ("id", "tenant", "state", "format", "received", "errors", "warnings"),
        (
            (
                r.id,
                r.tenant,
                r.state.value,
                format_label(r.source_format),
                r.received_at.strftime("%Y-%m-%d %H:%M"),
                (r.problem_totals or {}).get("error", 0),
                (r.problem_totals or {}).get("warning", 0),
            )
            for r in records
        ),
    )


# -- tenants and rosters ---------------------------------------------------------------------


def tenant_json(tenant: Tenant) -> dict[str, Any]:
    return {
        "name": tenant.name,
        "created_at": _iso(tenant.created_at),
        "disabled": tenant.disabled,
        "emails": list(tenant.emails),
        "password_login": tenant.password_hash is not None,
        "public_keys": len([k for k in tenant.authorized_keys.splitlines() if k.strip()]),
        "allow_from": list(tenant.allow_from),
        "settings": tenant.settings.as_dict(),
    }


def print_tenants(echo: Echo, tenants: Sequence[Tenant]) -> None:
    if not tenants:
        echo("no tenants yet: add one with `rosterdrop tenant add NAME --email ADDR`")
        return
    _table(
        echo,
        ("tenant", "status", "login", "emails"),
        (
            (
                t.name,
                "disabled" if t.disabled else "active",
                "+".join(
                    m
                    for m, on in (("password", t.password_hash), ("key", t.authorized_keys.strip()))
                    if on
                )
                or "none",
                ", ".join(t.emails) or "-",
            )
            for t in tenants
        ),
    )


def print_roster(echo: Echo, roster: Mapping[str, list[dict[str, Any]]]) -> None:
    for entity in ENTITIES:
        rows = roster[entity.name]
        echo(f"{entity.name} ({len(rows)})")
        columns = [c for c in (*BY_NAME[entity.name].columns, "teachers") if c != "extra"]
        for row in rows:
            echo("  " + "  ".join(_cell(row.get(c)) for c in columns if c in row))
        echo("")


def _cell(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return "-" if value in (None, "") else str(value)
