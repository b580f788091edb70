"""`psp init`: create the database or bring its schema up to date (apart from the demo, which loads much more)."""

from __future__ import annotations

import typer

from psp import db
from psp.commands.common import context


def init(ctx: typer.Context) -> None:
    """Create the database (or bring its schema up to date)."""
    app = context(ctx)
    engine = app.engine(create=True)
    db.migrate(engine)
    typer.echo(f"database ready: {engine.url.render_as_string(hide_password=True)}")


def register(app: typer.Typer) -> None:
    app.command("init")(init)
