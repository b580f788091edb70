"""`psp sync rt`: helpdesk tickets from Request Tracker."""

from __future__ import annotations

from typing import Annotated

import typer

from ingest.rt_sync import sync_health, sync_rt
from ingest.summary import IntakeSummary
from psp.commands.common import context, print_listing, print_summary

sync_app = typer.Typer(help="Read helpdesk tickets.", no_args_is_help=True)


@sync_app.command("rt")
def sync_request_tracker(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Read the tickets of [rt] changed since the last sync: each transaction stored once."""
    app = context(ctx)

    def log_page(number: int, summary: IntakeSummary) -> None:
        typer.echo(f"page {number}: {summary.line()}", err=True)

    summary = sync_rt(app.engine(), app.settings, on_page=None if as_json else log_page)
    print_summary(summary, as_json)


@sync_app.command("status")
def sync_status(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Health of each helpdesk synced: cursor, counts, last success, last error."""
    with context(ctx).transaction() as session:
        rows = sync_health(session)
    print_listing(
        rows,
        as_json,
        ["System", "Cursor", "Stored", "Dup", "Last success", "Last error"],
        lambda r: (
            r.system,
            (r.cursor or "none")[:19],
            r.stored,
            r.duplicates,
            (r.last_success_at or "never")[:19],
            (r.last_error or "")[:60],
        ),
        numeric={2, 3},
    )


def register(app: typer.Typer) -> None:
    app.add_typer(sync_app, name="sync")
