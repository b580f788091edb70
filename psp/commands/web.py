"""`psp serve`, `psp portal …` and `psp staff add`: the web shell from the command line."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
import uvicorn
from sqlalchemy.engine import Engine

from ledger.clients import get_client
from ledger.errors import InvalidInputError
from psp.commands.common import context, print_listing
from psp.config import DATABASE_URL_ENV, Settings
from psp.web.accounts import add_staff
from psp.web.app import CONFIG_ENV, create_app
from psp.web.links import issue_link, list_links, revoke_link

STAFF_PASSWORD_ENV = "PSP_STAFF_PASSWORD"

portal_app = typer.Typer(help="Clients' report links: issue, list, revoke.", no_args_is_help=True)
staff_app = typer.Typer(help="Staff logins for the web pages.", no_args_is_help=True)


def serve_app(settings: Settings, engine: Engine, host: str, port: int, workers: int = 1) -> None:
    """Run the web server until interrupted (also used by `psp demo --serve`).

    With several workers, uvicorn starts processes that each build the app from the environment
    (`psp.web.app:app_from_environment`): the database URL and the configuration file travel there.
    """
    if workers < 1:
        raise InvalidInputError(f"--workers must be 1 or more, got {workers}")
    typer.echo(f"serving on http://{host}:{port}/ (staff pages at /staff); Ctrl-C stops")
    options: dict[str, Any] = {"host": host, "port": port, "log_level": "warning", "server_header": False}
    if workers == 1:
        uvicorn.run(create_app(settings, engine), **options)
        return
    os.environ[DATABASE_URL_ENV] = engine.url.render_as_string(hide_password=False)
    if settings.source != "defaults":
        os.environ[CONFIG_ENV] = settings.source
    engine.dispose()
    uvicorn.run("psp.web.app:app_from_environment", factory=True, workers=workers, **options)


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to bind; keep loopback behind a TLS proxy.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", help="Server processes (one per core is a good start).")] = 1,
) -> None:
    """Serve the clients' Support Tracking Report and the staff pages."""
    app = context(ctx)
    serve_app(app.settings, app.engine(), host, port, workers)


@portal_app.command("link")
def portal_link(
    ctx: typer.Context,
    client: Annotated[str, typer.Argument(help="Client slug.")],
    days: Annotated[int | None, typer.Option("--days", help="Valid this many days (default [web].link_days).")] = None,
) -> None:
    """Issue a report link for a client and print its URL (shown only now: only a hash is kept)."""
    app = context(ctx)
    if days is not None and days <= 0:
        raise InvalidInputError(f"--days must be positive, got {days}")
    with app.transaction() as session:
        link = issue_link(session, app.actor, get_client(session, client), app.settings.web, days)
    typer.echo(link.url)


@portal_app.command("list")
def portal_list(
    ctx: typer.Context,
    client: Annotated[str | None, typer.Option("--client", help="Client slug.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Report links issued, newest first (their tokens are not kept and cannot be shown)."""
    with context(ctx).transaction() as session:
        rows = list_links(session, get_client(session, client) if client else None)
    now = datetime.now(UTC)
    print_listing(
        rows,
        as_json,
        ["Id", "Client", "Issued", "By", "Expires", "State"],
        lambda r: (
            r.id,
            r.client,
            f"{r.created_at:%Y-%m-%d}",
            r.created_by,
            f"{r.expires_at:%Y-%m-%d}",
            "live" if r.live(now) else ("revoked" if r.revoked_at else "expired"),
        ),
        numeric={0},
    )


@portal_app.command("revoke")
def portal_revoke(
    ctx: typer.Context, link_id: Annotated[int, typer.Argument(help="Link id (psp portal list).")]
) -> None:
    """Withdraw a report link at once."""
    app = context(ctx)
    with app.transaction() as session:
        revoke_link(session, app.actor, link_id)
    typer.echo(f"link {link_id} revoked")


@staff_app.command("add")
def staff_add(ctx: typer.Context, email: Annotated[str, typer.Argument(help="Login e-mail address.")]) -> None:
    """Create a staff login; the password comes from PSP_STAFF_PASSWORD or the prompt."""
    app = context(ctx)
    password = os.environ.get(STAFF_PASSWORD_ENV) or typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with app.transaction() as session:
        account = add_staff(session, app.actor, email, password)
    typer.echo(f"staff account {account.email} created")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(portal_app, name="portal")
    app.add_typer(staff_app, name="staff")
