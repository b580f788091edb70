"""`psp ingest` and `psp quarantine …`: mail and ticket exports from files, and what could not be stored."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn

from ingest.intake import ingest_files
from ingest.packing import unpack
from ingest.quarantine import list_quarantine, retry_quarantined, show_quarantined
from ingest.summary import IntakeSummary
from ingest.ticket_files import import_ticket_files, is_ticket_file
from psp.commands.common import context, print_listing, print_summary

quarantine_app = typer.Typer(help="Messages that could not be parsed or stored.", no_args_is_help=True)


def ingest(
    ctx: typer.Context,
    paths: Annotated[
        list[Path],
        typer.Argument(
            help=".eml files, Maildir folders, mbox files, or folders of them; ticket exports (.csv, .json)."
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Import mail and ticket exports from files: each message or ticket entry stored once."""
    app = context(ctx)
    engine = app.engine()
    tickets = [p for p in paths if is_ticket_file(p)]
    paths = [p for p in paths if not is_ticket_file(p)]
    tickets_summary = import_ticket_files(engine, app.settings, tickets) if tickets else IntakeSummary()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), transient=True, disable=as_json) as bar:
        task = bar.add_task("reading mail", total=None)
        running = IntakeSummary()

        def advance(batch: IntakeSummary) -> None:
            running.add(batch)
            bar.update(task, description=f"read {running.read}: {running.line()}")

        summary = ingest_files(engine, app.settings, paths, advance) if paths else IntakeSummary()
    summary.add(tickets_summary)
    print_summary(summary, as_json)


@quarantine_app.command("list")
def quarantine_list(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Quarantined messages, newest first, with the reason."""
    with context(ctx).transaction() as session:
        rows = list_quarantine(session)
    print_listing(
        rows,
        as_json,
        ["Id", "When", "Source", "Folder", "Uid", "Size", "Tries", "Reason"],
        lambda r: (r.id, r.created_at[:16], r.source, r.folder[-30:], r.uid, r.size, r.attempts, r.reason[:60]),
        numeric={0, 5, 6},
    )


@quarantine_app.command("show")
def quarantine_show(ctx: typer.Context, quarantine_id: int) -> None:
    """Print the reason and the raw message as it was received."""
    with context(ctx).transaction() as session:
        entry = show_quarantined(session, quarantine_id)
    typer.echo(f"quarantined {entry.created_at.isoformat()} from {entry.source} {entry.folder} {entry.uid}")
    typer.echo(f"reason: {entry.reason}\n")
    typer.echo(unpack(entry.raw).decode("utf-8", errors="replace"))


@quarantine_app.command("retry")
def quarantine_retry(ctx: typer.Context, quarantine_id: int) -> None:
    """Try to store a quarantined message again (after a fix, or with a newer version)."""
    app = context(ctx)
    with app.transaction() as session:
        outcome = retry_quarantined(session, app.settings, quarantine_id)
    typer.echo(outcome)


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    app.add_typer(quarantine_app, name="quarantine")
