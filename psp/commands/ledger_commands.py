"""`psp project …`, `psp balance`, `psp report` and `psp entries …`."""

from __future__ import annotations

from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ledger.clients import get_client
from ledger.models import ProjectStatus
from ledger.posting import decide_project, reverse_entry
from ledger.projects import add_project, list_projects
from ledger.report_formats import dumps, report_csv, report_html, report_json, report_table
from ledger.reports import balance, ledger_lines, tracking_report
from ledger.tables import text_table
from psp.commands.common import context, parse_day, print_json, print_listing

project_app = typer.Typer(help="Projects whose prep time waits for the client's decision.", no_args_is_help=True)
entries_app = typer.Typer(help="The append-only ledger entries.", no_args_is_help=True)


class ReportFormat(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"
    HTML = "html"


@project_app.command("add")
def project_add(ctx: typer.Context, client: str, name: str) -> None:
    """Open a proposed project for a client."""
    app = context(ctx)
    with app.transaction() as session:
        project = add_project(session, app.actor, get_client(session, client), name)
    typer.echo(f"project {project.id}: {project.name} ({client}), proposed")


@project_app.command("list")
def project_list(
    ctx: typer.Context,
    client: Annotated[str | None, typer.Option("--client")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List projects and their status."""
    with context(ctx).transaction() as session:
        rows = list_projects(session, get_client(session, client) if client else None)
    print_listing(rows, as_json, ["Id", "Client", "Name", "Status", "Decided"], lambda r: tuple(asdict(r).values()))


def _decide(ctx: typer.Context, project_id: int, status: ProjectStatus) -> None:
    app = context(ctx)
    with app.transaction() as session:
        entries = decide_project(session, app.actor, project_id, status, app.settings.policy, app.today())
    charged = -sum(e.minutes for e in entries)
    typer.echo(f"project {project_id} {status.value}: {len(entries)} prep item(s) posted, {charged} min charged")


@project_app.command("accept")
def project_accept(ctx: typer.Context, project_id: int) -> None:
    """The client commissioned the project: its prep time is waived (kept at 0)."""
    _decide(ctx, project_id, ProjectStatus.ACCEPTED)


@project_app.command("decline")
def project_decline(ctx: typer.Context, project_id: int) -> None:
    """The client declined: all the project's prep time is charged today."""
    _decide(ctx, project_id, ProjectStatus.DECLINED)


def balance_command(
    ctx: typer.Context,
    client: Annotated[str, typer.Argument(help="Client slug.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Posted balance beside pending and held minutes."""
    with context(ctx).transaction() as session:
        summary = balance(session, get_client(session, client))
    if as_json:
        print_json({**asdict(summary), "projected_minutes": summary.projected_minutes})
        return
    typer.echo(
        f"{summary.client} ({summary.plan}): balance {summary.balance_minutes} min; "
        f"pending review {summary.pending_minutes} min; held {summary.held_minutes} min; "
        f"projected {summary.projected_minutes} min"
    )


def report_command(
    ctx: typer.Context,
    client: Annotated[str, typer.Argument(help="Client slug.")],
    start: Annotated[str | None, typer.Option("--from", help="First date YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last date YYYY-MM-DD.")] = None,
    output_format: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.TABLE,
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file instead of stdout.")] = None,
) -> None:
    """The Support Tracking Report: date, issue, time charged, running PSP balance."""
    app = context(ctx)
    first, last = parse_day(start, "--from date"), parse_day(end, "--to date")
    with app.transaction() as session:
        found = get_client(session, client)
        summary = balance(session, found, as_of=last)
        rows = tracking_report(ledger_lines(session, found, first, last))
    if output_format is ReportFormat.JSON:
        text = dumps(report_json(found.slug, summary, rows))
    elif output_format is ReportFormat.CSV:
        text = report_csv(rows)
    elif output_format is ReportFormat.HTML:
        text = report_html(found.name, summary, rows, last or app.today())
    else:
        text = report_table(found.name, summary, rows)
    if out is None:
        typer.echo(text, nl=not text.endswith("\n"))
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"report written to {out}", err=True)


@entries_app.command("list")
def entries_list(
    ctx: typer.Context,
    client: Annotated[str, typer.Argument(help="Client slug.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Every ledger entry of a client with the running balance; minutes signed, credits positive."""
    with context(ctx).transaction() as session:
        lines = ledger_lines(session, get_client(session, client))
    if as_json:
        print_json(
            [
                {
                    "id": e.id,
                    "date": e.date.isoformat(),
                    "kind": e.kind,
                    "category": e.category,
                    "minutes": e.minutes,
                    "balance": e.balance,
                    "subject": e.subject,
                    "reverses": e.reverses,
                    "reason": e.reason,
                }
                for e in lines
            ]
        )
        return
    typer.echo(
        text_table(
            ["Id", "Date", "Kind", "Category", "Minutes", "Balance", "Subject", "Reverses"],
            [(e.id, e.date, e.kind, e.category, e.minutes, e.balance, e.subject[:50], e.reverses) for e in lines],
            numeric={0, 4, 5},
        )
    )


@entries_app.command("reverse")
def entries_reverse(
    ctx: typer.Context,
    entry_id: Annotated[int, typer.Argument(help="Entry to reverse.")],
    reason: Annotated[str, typer.Option("--reason", help="Why; kept on the reversal.")],
    on: Annotated[str | None, typer.Option("--on", help="Date of the reversal YYYY-MM-DD (default today).")] = None,
) -> None:
    """Cancel an entry with an opposite one; its proposal goes back to review."""
    app = context(ctx)
    day = parse_day(on, "--on date") or app.today()
    with app.transaction() as session:
        reversal = reverse_entry(session, app.actor, entry_id, reason, day)
    typer.echo(f"entry {reversal.id} reverses entry {entry_id} ({reversal.minutes:+d} min)")


def register(app: typer.Typer) -> None:
    app.add_typer(project_app, name="project")
    app.command("balance")(balance_command)
    app.command("report")(report_command)
    app.add_typer(entries_app, name="entries")
