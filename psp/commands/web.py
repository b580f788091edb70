"""`psp serve`, `psp portal …` and `psp staff add`: the web shell from the command line."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Annotated

import typer
import uvicorn
from sqlalchemy.engine import Engine

from ledger.clients import get_client
from ledger.errors import InvalidInputError
from psp import db
from psp.commands.common import context, print_listing
from psp.config import Settings
from psp.web.accounts import add_staff
from psp.web.app import create_app
from psp.web.links import issue_link, list_links, revoke_link

STAFF_PASSWORD_ENV = "PSP_STAFF_PASSWORD"

portal_app = typer.Typer(help="Clients' report links: issue, list, revoke.", no_args_is_help=True)
staff_app = typer.Typer(help="Staff logins for the web pages.", no_args_is_help=True)


def serve_app(settings: Settings, engine: Engine, host: str, port: int, workers: int = 1) -> None:
    """Run the web server until interrupted (also used by `psp demo --serve`)."""
    if workers < 1:
        raise InvalidInputError(f"--workers must be 1 or more, got {workers}")
    typer.echo(f"serving on http://{host}:{port}/ (staff pages at /staff); Ctrl-C stops")
    if workers == 1:
        uvicorn.run(create_app(settings, engine), host=host, port=port, log_level="warning", server_header=False)
        return
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()  # each worker opens its own connections after the fork
    serve_workers(settings, url, listening_socket(host, port), workers)


def listening_socket(host: str, port: int) -> socket.socket:
    """The shared listening socket, made with protocol TCP.

    asyncio turns on TCP_NODELAY only for sockets whose protocol says TCP; uvicorn's own
    multi-worker socket says 0, and then every keep-alive response waits ~40 ms for a delayed ACK.
    """
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _worker(settings: Settings, url: str, sock: socket.socket) -> None:
    engine = db.make_engine(url)
    config = uvicorn.Config(create_app(settings, engine), log_level="warning", server_header=False)
    uvicorn.Server(config).run(sockets=[sock])


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve_workers(settings: Settings, url: str, sock: socket.socket, workers: int) -> None:
    """Forked worker processes sharing one socket; SIGINT or SIGTERM stops them all gracefully."""
    forking = multiprocessing.get_context("fork")
    processes = [forking.Process(target=_worker, args=(settings, url, sock), daemon=True) for _ in range(workers)]
    for process in processes:
        process.start()
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        for process in processes:
            process.join()
    except KeyboardInterrupt:
        for process in processes:
            process.terminate()  # uvicorn finishes the requests in flight on SIGTERM
        for process in processes:
            process.join(timeout=30)
    finally:
        sock.close()


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
        lifetime = timedelta(days=days) if days is not None else None
        link = issue_link(session, app.actor, get_client(session, client), app.settings.web, lifetime)
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
            r.state(now),
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
