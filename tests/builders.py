"""Small builders for ledger tests, and the ledger stated as text lines for comparisons."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from sqlmodel import Session

from ledger.clients import add_client
from ledger.models import Category, Channel, Client, Plan, Proposal, SourceItem
from ledger.proposals import propose
from ledger.reports import ledger_lines

STAFF = "anna@example.test"
DAY = date(2026, 11, 3)


def client(session: Session, name: str = "Acme Shop", plan: Plan = Plan.PSP) -> Client:
    return add_client(session, STAFF, name, plan=plan)


def proposal(
    session: Session,
    owner: Client,
    minutes: int,
    *,
    category: Category = Category.BILLABLE,
    subject: str = "Checkout broken",
    thread: str | None = None,
    on: date = DAY,
    project_id: int | None = None,
) -> Proposal:
    """A stored item (mail by default) with a pending proposal of `minutes`."""
    key = f"test:{owner.slug}:{subject}:{on}:{minutes}:{thread}:{category}"
    item = SourceItem(
        client_id=owner.id,
        channel=Channel.EMAIL.value,
        subject=subject,
        occurred_at=datetime.combine(on, time(12), UTC),
        thread_key=thread or key,
        source_key=key,
    )
    session.add(item)
    session.flush()
    return propose(
        session,
        item,
        category=category,
        contact_minutes=minutes,
        minutes=minutes,
        rule="test",
        explanation="test proposal",
        project_id=project_id,
    )


def ledger_text(session: Session, owner: Client) -> str:
    """One line per entry: date, kind, category, signed minutes, running balance, subject."""
    return "\n".join(
        f"{line.date} {line.kind} {line.category or '-'} {line.minutes:+d} = {line.balance} {line.subject}"
        for line in ledger_lines(session, owner)
    )
