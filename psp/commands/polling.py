"""`psp poll` and `psp mailboxes`: the IMAP accounts (and Request Tracker, under --watch), and their health.

Apart from `psp ingest`, so that a poll from cron loads neither the progress bar nor the file
importers, and `--watch` lives in `psp.commands.watching`, loaded only for it: start-up is most of
an idle poll's time.
"""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from ingest.imap import ImapError, mailbox_health, poll_account
from ingest.summary import IntakeSummary
from psp.commands.common import context, print_listing, print_summary


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
    if not app.settings.imap and not (watch_mode and app.settings.rt.watched):
        raise ImapError(f"no [[imap]] accounts in {app.settings.source}: nothing to poll")
    engine = app.engine()

    def log_batch(account: str, folder: str, batch: IntakeSummary) -> None:
        typer.echo(f"{account}/{folder}: {batch.line()}", err=True)

    if watch_mode:
        importlib.import_module("psp.commands.watching").run(engine, app.settings, log_batch)
        return
    total, errors = IntakeSummary(), []
    for account in app.settings.imap:
        summary, failed = poll_account(engine, app.settings, account, None if as_json else log_batch)
        total.add(summary)
        errors.extend(failed)
    print_summary(total, as_json)
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


def register(app: typer.Typer) -> None:
    app.command("poll")(poll)
    app.command("mailboxes")(mailboxes)
