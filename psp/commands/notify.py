"""`psp notify renewals`: renewal notices, safe to run from cron every few minutes."""

from __future__ import annotations

from typing import Annotated

import typer

from notify.mailer import mailer_for
from notify.outbox import deliver_pending
from notify.renewals import record_notice, renewals_due
from psp.commands.common import context

notify_app = typer.Typer(help="Notices to clients by email.", no_args_is_help=True)


@notify_app.command("renewals")
def renewals(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say who would get a notice; send and record nothing.")
    ] = False,
) -> None:
    """Send a renewal notice to each PSP client whose balance first fell to a threshold."""
    app = context(ctx)
    with app.transaction() as session:
        due = renewals_due(session, app.settings, app.today())
        if dry_run:
            session.rollback()
        else:
            for notice in due:
                if notice.contacts:
                    record_notice(session, notice, app.settings)
    for notice in due:
        where = ", ".join(notice.contacts) or "nobody: the client has no billing address"
        verb = "would notify" if dry_run else ("notifying" if notice.contacts else "cannot notify")
        thresholds = ", ".join(map(str, notice.thresholds))
        typer.echo(f"{notice.slug}: balance {notice.balance} min (threshold {thresholds}): {verb} {where}")
    if dry_run:
        return
    for delivery in deliver_pending(app.engine(), mailer_for(app.settings.smtp)):
        typer.echo(
            f"mail {delivery.mail_id} to {delivery.recipients}: {delivery.status}"
            + (f" ({delivery.error})" if delivery.error else "")
        )
    if not due:
        typer.echo("no renewal notices due")


def register(app: typer.Typer) -> None:
    app.add_typer(notify_app, name="notify")
