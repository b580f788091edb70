"""`psp client …` and `psp block add`."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer

from ledger.clients import add_client, get_client, list_clients
from ledger.errors import InvalidInputError
from ledger.models import Plan
from ledger.posting import buy_block
from psp.commands.common import context, parse_day, print_listing

client_app = typer.Typer(help="Clients, their contact addresses and mail domains.", no_args_is_help=True)
block_app = typer.Typer(help="PSP blocks bought by clients.", no_args_is_help=True)


def to_cents(amount: str) -> int:
    """`85` or `85.50` (a rate in currency units) → integer minor units."""
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise InvalidInputError(f"bad amount {amount!r}: use a number like 85 or 85.50") from None
    cents = value * 100
    if cents != cents.to_integral_value() or cents < 0:
        raise InvalidInputError(f"bad amount {amount!r}: at most two decimals, not negative")
    return int(cents)


@client_app.command("add")
def client_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Client name; the slug is derived from it (Acme Shop → acme-shop).")],
    email: Annotated[list[str] | None, typer.Option("--email", help="Contact address (repeatable).")] = None,
    domain: Annotated[
        list[str] | None, typer.Option("--domain", help="Mail domain of the client (repeatable).")
    ] = None,
    plan: Annotated[
        Plan, typer.Option("--plan", help="psp: prepaid blocks; none: two-hour minimum per request.")
    ] = Plan.PSP,
    rate: Annotated[str, typer.Option("--rate", help="Hourly rate for work outside a plan, e.g. 85.00.")] = "0",
) -> None:
    """Add a client."""
    app = context(ctx)
    with app.transaction() as session:
        client = add_client(
            session,
            app.actor,
            name,
            plan=plan,
            emails=tuple(email or ()),
            domains=tuple(domain or ()),
            hourly_rate_cents=to_cents(rate),
        )
    typer.echo(f"added client {client.slug} ({client.name}, plan {client.plan})")


@client_app.command("list")
def client_list(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List clients with their balances."""
    with context(ctx).transaction() as session:
        clients = list_clients(session)
    print_listing(
        clients,
        as_json,
        ["Slug", "Name", "Plan", "Balance", "Emails", "Domains"],
        lambda c: (c.slug, c.name, c.plan, c.balance_minutes, ", ".join(c.emails), ", ".join(c.domains)),
        numeric={3},
    )


@block_app.command("add")
def block_add(
    ctx: typer.Context,
    client: Annotated[str, typer.Argument(help="Client slug.")],
    minutes: Annotated[int | None, typer.Option("--minutes", help="Minutes in the block (default: policy).")] = None,
    ref: Annotated[str | None, typer.Option("--ref", help="Invoice or order reference.")] = None,
    on: Annotated[str | None, typer.Option("--on", help="Purchase date YYYY-MM-DD (default today).")] = None,
) -> None:
    """Record a block purchase: credits the client's PSP balance."""
    app = context(ctx)
    day = parse_day(on, "--on date") or app.today()
    with app.transaction() as session:
        block, entry = buy_block(
            session,
            app.actor,
            get_client(session, client),
            app.settings.policy,
            minutes=app.settings.policy.block_minutes if minutes is None else minutes,
            ref=ref,
            on=day,
        )
    typer.echo(f"block {block.id}: {block.minutes} min credited to {client} (entry {entry.id})")


def register(app: typer.Typer) -> None:
    app.add_typer(client_app, name="client")
    app.add_typer(block_app, name="block")
