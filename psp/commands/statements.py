"""`psp statements MONTH`: each client's month, checked, rendered, written out or sent once."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ledger.statements import StatementMonth
from notify.mailer import mailer_for
from notify.outbox import deliver_pending
from notify.statements import gather, outcome, record_statements, render_all, write_files
from psp.commands.common import context, print_json


def statements(
    ctx: typer.Context,
    month_text: Annotated[str, typer.Argument(metavar="MONTH", help="YYYY-MM, or `last` for last month.")],
    client: Annotated[str | None, typer.Option("--client", help="Only this client (its slug).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write .txt, .html, .csv and .pdf files here.")] = None,
    send: Annotated[bool, typer.Option("--send", help="Mail each client its statement (once per month).")] = False,
    resend: Annotated[bool, typer.Option("--resend", help="With --send: send again, as a new version.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Monthly statements in the consultancy's time zone; a statement that does not reconcile is refused."""
    app = context(ctx)
    if resend and not send:
        raise typer.BadParameter("--resend goes with --send")
    month = StatementMonth.parse(month_text, app.today())
    engine = app.engine()
    found = gather(engine, app.settings, month, client)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
        disable=as_json or len(found) < 2,
    ) as bar:
        rendering = bar.add_task(f"rendering {month.label}", total=len(found))
        rendered = render_all(found, app.settings, lambda: bar.advance(rendering))
        if out is not None:
            write_files(out, rendered)
        if send:
            with app.transaction() as session:
                outcomes = record_statements(session, app.settings, rendered, resend=resend)
            sending = bar.add_task("sending", total=None)

            def sent(remaining: int) -> None:
                total = bar.tasks[sending].total or remaining
                bar.update(sending, total=total, completed=total - remaining)

            by_mail = {o.mail_id: o for o in outcomes if o.mail_id is not None}
            for delivery in deliver_pending(engine, mailer_for(app.settings.smtp), advance=sent):
                if delivery.mail_id in by_mail:
                    by_mail[delivery.mail_id].status = delivery.status
                    by_mail[delivery.mail_id].detail = delivery.error or f"to {delivery.recipients}"
        else:
            outcomes = [outcome(item, "written" if out else "rendered") for item in rendered]
    if as_json:
        print_json([asdict(o) for o in outcomes])
        return
    for o in outcomes:
        typer.echo(
            f"{o.client} {o.month}: opening {o.opening}, charged {o.charged}, credited {o.credited}, "
            f"closing {o.closing} min: {o.status}" + (f" ({o.detail})" if o.detail else "")
        )
    if not outcomes:
        typer.echo(f"no statements for {month.label}")
    elif out is not None:
        typer.echo(f"files in {out}")


def register(app: typer.Typer) -> None:
    app.command("statements")(statements)
