"""`psp ingest` and `psp quarantine …`: mail from files, and what could not be stored."""

from __future__ import annotations

import logging
import signal
import threading
import zlib
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn

from ingest.imap import ImapError, mailbox_health, poll_account
from ingest.intake import ingest_files
from ingest.quarantine import list_quarantine, retry_quarantined, show_quarantined
from ingest.rt_watch import rt_watched, watching_rt
from ingest.store import IntakeSummary
from ingest.ticket_files import import_ticket_files, is_ticket_file
from ingest.watch import watch
from psp.commands.common import context, print_json, print_listing

quarantine_app = typer.Typer(help="Messages that could not be parsed or stored.", no_args_is_help=True)


def summary_line(summary: IntakeSummary) -> str:
    return ", ".join(f"{value} {name}" for name, value in asdict(summary).items())


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
            bar.update(task, description=f"read {running.read}: {summary_line(running)}")

        summary = ingest_files(engine, app.settings, paths, advance) if paths else IntakeSummary()
    summary.add(tickets_summary)
    if as_json:
        print_json(asdict(summary))
    else:
        typer.echo(summary_line(summary))


def poll(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="Read each folder once and exit (the default).")] = False,
    watch_mode: Annotated[
        bool, typer.Option("--watch", help="Stay connected: IMAP IDLE, reconnect on failure; sync RT every interval.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Read the configured IMAP accounts ([[imap]] in psp.toml)."""
    app = context(ctx)
    if once and watch_mode:
        raise typer.BadParameter("choose --once or --watch, not both")
    if not app.settings.imap and not (watch_mode and rt_watched(app.settings)):
        raise ImapError(f"no [[imap]] accounts in {app.settings.source}: nothing to poll")
    engine = app.engine()

    def log_batch(account: str, folder: str, batch: IntakeSummary) -> None:
        typer.echo(f"{account}/{folder}: {summary_line(batch)}", err=True)

    if watch_mode:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            with watching_rt(engine, app.settings, stop, lambda s: typer.echo(f"rt: {summary_line(s)}", err=True)):
                watch(engine, app.settings, stop, log_batch)
                stop.wait()  # with RT alone, no IMAP watcher holds the command open
        except KeyboardInterrupt:
            stop.set()
        return
    total, errors = IntakeSummary(), []
    for account in app.settings.imap:
        summary, failed = poll_account(engine, app.settings, account, None if as_json else log_batch)
        total.add(summary)
        errors.extend(failed)
    if as_json:
        print_json(asdict(total))
    else:
        typer.echo(summary_line(total))
    if errors:
        raise ImapError("; ".join(errors))


def mailboxes(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Health of each polled folder: last success, counts, last error."""
    with context(ctx).transaction() as session:
        rows = mailbox_health(session)
    print_listing(
        rows,
        as_json,
        ["Account", "Folder", "UIDVALIDITY", "Last UID", "Stored", "Dup", "Quar", "Last success", "Last error"],
        lambda r: (
            r.account,
            r.folder,
            r.uidvalidity,
            r.last_uid,
            r.stored,
            r.duplicates,
            r.quarantined,
            (r.last_success_at or "never")[:19],
            (r.last_error or "")[:60],
        ),
        numeric={2, 3, 4, 5, 6},
    )


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
    typer.echo(zlib.decompress(entry.raw).decode("utf-8", errors="replace"))


@quarantine_app.command("retry")
def quarantine_retry(ctx: typer.Context, quarantine_id: int) -> None:
    """Try to store a quarantined message again (after a fix, or with a newer version)."""
    app = context(ctx)
    with app.transaction() as session:
        outcome = retry_quarantined(session, app.settings, quarantine_id)
    typer.echo(outcome)


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    app.command("poll")(poll)
    app.command("mailboxes")(mailboxes)
    app.add_typer(quarantine_app, name="quarantine")
