"""`psp demo`: the whole pipeline on bundled sample data, then its reports and, if asked, its portal."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from ingest.intake import ingest_files
from ledger.clients import get_client, list_clients
from ledger.models import ProposalStatus
from ledger.proposals import list_proposals
from ledger.report_formats import report_table
from ledger.reports import balance, ledger_lines, tracking_report
from ledger.tables import text_table
from psp import db, demo
from psp.commands.common import context
from psp.commands.web import serve_app


def demo_command(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Option("--dir", help="Folder for the demo database.")] = Path("psp-demo"),
    serve: Annotated[bool, typer.Option("--serve", help="Then serve the web portal on 127.0.0.1.")] = False,
    port: Annotated[int, typer.Option("--port", help="Port for --serve.")] = 8000,
) -> None:
    """Run the whole pipeline on bundled sample data in a fresh SQLite database, then print the reports."""
    app = context(ctx)
    settings = demo.demo_settings(app.settings)
    # The demo serves plain HTTP on this machine only: the session cookie cannot require HTTPS there.
    settings = replace(settings, web=replace(settings.web, base_url=f"http://127.0.0.1:{port}", secure_cookies=False))
    engine = demo.create_demo_database(folder)
    with db.transaction(engine) as session:
        demo.populate(session, settings, app.today())
    mail = ingest_files(engine, settings, [demo.SAMPLE_MAILDIR])
    typer.echo(f"Sample mailbox ingested: {mail.line()}")
    sent = demo.send_demo_mail(engine, settings, app.today(), folder / "outbox")
    typer.echo(f"Outbox: {len(sent)} messages (statements and a renewal notice) in {folder / 'outbox'}\n")
    with db.transaction(engine) as session:
        for summary in list_clients(session):
            client = get_client(session, summary.slug)
            typer.echo(
                report_table(client.name, balance(session, client), tracking_report(ledger_lines(session, client)))
            )
            typer.echo()
        pending = list_proposals(session, ProposalStatus.PENDING)
    typer.echo("Waiting for review:")
    typer.echo(
        text_table(
            ["Id", "Client", "Category", "Min", "Subject", "Explanation"],
            [(p.id, p.client, p.category, p.minutes, p.subject, p.explanation) for p in pending],
            numeric={0, 3},
        )
    )
    url = f"sqlite:///{folder / 'psp.db'}"
    typer.echo(f"\nDemo database: {url}\nTry: psp --db {url} report acme-shop --format html --out report.html")
    password, link = demo.web_access(engine, settings)
    typer.echo(
        f"\nWeb portal ({'serving now' if serve else f'psp demo --serve, or psp --db {url} serve --port {port}'}):\n"
        f"  Staff login:        {settings.web.base_url}/staff  {demo.STAFF} / {password}\n"
        f"  Acme Shop's report: {link}"
    )
    if serve:
        serve_app(settings, engine, "127.0.0.1", port)
    engine.dispose()


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
