"""`psp log` and `psp proposals …`: what waits for a staff decision, and the decisions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from ledger.clients import get_client
from ledger.models import Category, Channel, ProposalStatus
from ledger.posting import approve, reject
from ledger.proposals import assign_client, list_proposals, log_contact
from ledger.tables import text_table
from psp.commands.common import context, noon_utc, parse_day, print_json

proposals_app = typer.Typer(help="Proposed minutes waiting for review, and their decisions.", no_args_is_help=True)


def log(
    ctx: typer.Context,
    client: Annotated[str, typer.Argument(help="Client slug.")],
    minutes: Annotated[int, typer.Option("--minutes", help="Contact time in whole minutes.")],
    channel: Annotated[Channel, typer.Option("--channel", help="How the contact happened.")],
    subject: Annotated[str, typer.Option("--subject", help="What it was about.")],
    category: Annotated[Category, typer.Option("--category")] = Category.BILLABLE,
    project: Annotated[int | None, typer.Option("--project", help="Project id, for project prep.")] = None,
    on: Annotated[str | None, typer.Option("--on", help="Date YYYY-MM-DD (default now).")] = None,
) -> None:
    """Log phone, Skype or on-site time: creates a pending proposal like any other source."""
    app = context(ctx)
    day = parse_day(on, "--on date")
    occurred_at = noon_utc(day, app.settings) if day else datetime.now(UTC)
    with app.transaction() as session:
        proposal = log_contact(
            session,
            app.actor,
            get_client(session, client),
            app.settings.policy,
            contact_minutes=minutes,
            channel=channel,
            subject=subject,
            category=category,
            project_id=project,
            occurred_at=occurred_at,
        )
    typer.echo(
        f"proposal {proposal.id}: {proposal.minutes} min {proposal.category} pending review ({proposal.explanation})"
    )


@proposals_app.command("list")
def proposals_list(
    ctx: typer.Context,
    status: Annotated[ProposalStatus | None, typer.Option("--status")] = None,
    client: Annotated[str | None, typer.Option("--client", help="Client slug.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List proposals, oldest first."""
    with context(ctx).transaction() as session:
        rows = list_proposals(session, status, get_client(session, client) if client else None)
    if as_json:
        print_json(
            [
                {
                    "id": r.id,
                    "client": r.client,
                    "status": r.status,
                    "category": r.category,
                    "minutes": r.minutes,
                    "contact_minutes": r.contact_minutes,
                    "channel": r.channel,
                    "subject": r.subject,
                    "rule": r.rule,
                    "explanation": r.explanation,
                    "project": r.project,
                    "occurred_at": r.occurred_at.isoformat(),
                }
                for r in rows
            ]
        )
        return
    typer.echo(
        text_table(
            ["Id", "Client", "Status", "Category", "Min", "Contact", "Channel", "Subject", "Rule"],
            [
                (
                    r.id,
                    r.client or "(unmatched)",
                    r.status,
                    r.category,
                    r.minutes,
                    r.contact_minutes,
                    r.channel,
                    r.subject[:50],
                    r.rule,
                )
                for r in rows
            ],
            numeric={0, 4, 5},
        )
    )


@proposals_app.command("approve")
def proposals_approve(
    ctx: typer.Context,
    ids: Annotated[list[int], typer.Argument(help="Proposal ids; all are approved together or none.")],
    minutes: Annotated[int | None, typer.Option("--minutes", help="Post these minutes instead.")] = None,
    category: Annotated[Category | None, typer.Option("--category", help="Post under this category instead.")] = None,
    project: Annotated[int | None, typer.Option("--project", help="Project id for project prep.")] = None,
    note: Annotated[str | None, typer.Option("--note", help="Kept with the decision.")] = None,
) -> None:
    """Approve proposals: each posts exactly one ledger entry (or is held for its project)."""
    app = context(ctx)
    with app.transaction() as session:
        approvals = [
            approve(
                session,
                app.actor,
                i,
                app.settings.policy,
                minutes=minutes,
                category=category,
                project_id=project,
                note=note,
            )
            for i in ids
        ]
    for a in approvals:
        where = f"entry {a.entry.id}" if a.entry else "no entry yet"
        typer.echo(f"approved proposal {a.proposal.id}: {a.decision.reason} ({where})")


@proposals_app.command("reject")
def proposals_reject(
    ctx: typer.Context,
    ids: Annotated[list[int], typer.Argument(help="Proposal ids.")],
    reason: Annotated[str, typer.Option("--reason", help="Why; kept with the decision.")],
) -> None:
    """Reject proposals: nothing is posted."""
    app = context(ctx)
    with app.transaction() as session:
        for i in ids:
            reject(session, app.actor, i, reason)
    typer.echo(f"rejected {', '.join(map(str, ids))}")


@proposals_app.command("assign")
def proposals_assign(
    ctx: typer.Context,
    proposal_id: Annotated[int, typer.Argument(help="Proposal of an unmatched or unverified sender.")],
    client: Annotated[str, typer.Argument(help="Client slug.")],
    remember: Annotated[bool, typer.Option("--remember", help="Add the sender's address to the client.")] = False,
) -> None:
    """Attach an item to a client (e.g. mail from an address we did not know yet)."""
    app = context(ctx)
    with app.transaction() as session:
        assign_client(session, app.actor, proposal_id, get_client(session, client), remember=remember)
    typer.echo(f"proposal {proposal_id} assigned to {client}" + (" (address remembered)" if remember else ""))


def register(app: typer.Typer) -> None:
    app.command("log")(log)
    app.add_typer(proposals_app, name="proposals")
