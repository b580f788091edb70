"""Monthly statements as data: what a client's month holds, read for all clients in a few queries.

The month is a calendar month of local dates in the consultancy's time zone (entries carry their
local date, `effective_on`, from the moment they happened). A statement is checked before anyone
renders it: opening balance plus the month's items must equal the closing balance the database
computes on its own, and the last running balance must agree, or it is an error naming the numbers.
"""

from __future__ import annotations

import calendar
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col

from ledger.errors import InvalidInputError, LedgerError, NotFoundError
from ledger.models import Block, Category, Client, ClientEmail, EntryKind, LedgerEntry, Plan, Proposal
from psp.config import Policy

_FREE_CATEGORIES = (Category.MODULE_BUG.value, Category.PRE_SALES.value, Category.PROJECT_PREP.value)


class ReconciliationError(LedgerError):
    """A statement's opening balance and items do not add up to its closing balance."""


@dataclass(frozen=True)
class StatementMonth:
    """A calendar month of local dates, named YYYY-MM."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str, today: date) -> StatementMonth:
        """`2026-10`, or `last` for the month before `today` (what a monthly cron job asks for)."""
        if text == "last":
            previous = today.replace(day=1) - timedelta(days=1)
            return cls(previous.year, previous.month)
        try:
            first = date.fromisoformat(f"{text}-01")
        except ValueError:
            raise InvalidInputError(f"bad month {text!r}: use YYYY-MM (e.g. 2026-10) or `last`") from None
        if len(text) != 7:
            raise InvalidInputError(f"bad month {text!r}: use YYYY-MM (e.g. 2026-10) or `last`")
        return cls(first.year, first.month)

    @property
    def first(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last(self) -> date:
        return date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def title(self) -> str:
        return self.first.strftime("%B %Y")


@dataclass(frozen=True)
class StatementLine:
    """One posted entry of the month, as the statement lists it.

    Attributes:
      charged: minutes the entry took off the balance: positive for time charged, 0 for a free
        item, negative for a credit (a block, a reversed charge).
      balance: the running balance after it, over the client's whole history.
      work_minutes: the minutes staff approved for the item (what a free item would have cost).
      contact_minutes: the contact time behind the item, when it came from a proposal.
    """

    id: int
    date: date
    kind: str
    category: str | None
    channel: str | None
    subject: str
    charged: int
    balance: int
    work_minutes: int
    contact_minutes: int | None
    request_key: str | None
    reverses: int | None
    block_ref: str | None
    reason: str

    @property
    def free(self) -> bool:
        return self.kind == EntryKind.CHARGE.value and self.charged == 0


@dataclass(frozen=True)
class NonPlanSummary:
    """A month of work for a client without a plan: what is due, and what a plan would have cost.

    Attributes:
      requests: support requests (threads, tickets, declined projects) charged this month.
      charged_minutes: minutes charged, each request lifted to the minimum.
      amount_due_cents: charged minutes at the client's hourly rate, to the nearest cent.
      work_minutes: the minutes the work itself took, without the minimum.
      plan_blocks: PSP blocks that would have covered the work.
      plan_cost_cents: what those blocks cost.
    """

    requests: int
    charged_minutes: int
    amount_due_cents: int
    work_minutes: int
    plan_blocks: int
    plan_cost_cents: int


@dataclass(frozen=True)
class StatementData:
    """Everything one client's statement for one month says, checked to reconcile.

    Attributes:
      free_items: approved items that cost nothing (module bugs, pre-sales, waived project prep).
      uncharged_contact_minutes: contact time we spent and did not charge (the generous rule and
        the free items together).
    """

    client_id: int
    slug: str
    name: str
    plan: str
    hourly_rate_cents: int
    contacts: tuple[str, ...]
    month: StatementMonth
    opening: int
    closing: int
    lines: tuple[StatementLine, ...]
    charged_minutes: int
    credited_minutes: int
    blocks: tuple[StatementLine, ...]
    free_items: tuple[StatementLine, ...]
    uncharged_contact_minutes: int
    nonplan: NonPlanSummary | None


def reconcile(slug: str, month: StatementMonth, opening: int, lines: Sequence[StatementLine], closing: int) -> None:
    """opening − Σ charged = closing, and the last running balance is the closing; else an error with the numbers."""
    movement = -sum(line.charged for line in lines)
    if opening + movement != closing:
        difference = closing - (opening + movement)
        raise ReconciliationError(
            f"statement for {slug} {month.label} does not reconcile: opening {opening} min {movement:+d} min "
            f"of items = {opening + movement} min, but the closing balance is {closing} min "
            f"({difference:+d} min unexplained)"
        )
    if lines and lines[-1].balance != closing:
        raise ReconciliationError(
            f"statement for {slug} {month.label} does not reconcile: the last running balance is "
            f"{lines[-1].balance} min, but the closing balance is {closing} min"
        )


def live_charges(lines: Sequence[StatementLine]) -> list[StatementLine]:
    """Charges that stand: neither reversed within the month nor reversals themselves."""
    reversed_ids = {line.reverses for line in lines if line.reverses is not None}
    return [line for line in lines if line.kind == EntryKind.CHARGE.value and line.id not in reversed_ids]


def nonplan_summary(lines: Sequence[StatementLine], rate_cents: int, policy: Policy) -> NonPlanSummary:
    """What a client without a plan owes for the month, beside what a plan would have cost."""
    charged = sum(line.charged for line in lines if line.kind != EntryKind.BLOCK.value)
    standing = [line for line in live_charges(lines) if line.charged > 0]
    work = sum(line.work_minutes for line in standing)
    blocks = math.ceil(work / policy.block_minutes) if work > 0 else 0
    block_price = policy.block_price_cents or rate_cents * policy.block_minutes // 60
    return NonPlanSummary(
        requests=len({line.request_key or f"entry:{line.id}" for line in standing}),
        charged_minutes=charged,
        amount_due_cents=(charged * rate_cents + 30) // 60,
        work_minutes=work,
        plan_blocks=blocks,
        plan_cost_cents=blocks * block_price,
    )


def build_statement(
    client: Client,
    contacts: Sequence[str],
    month: StatementMonth,
    opening: int,
    closing: int,
    lines: Sequence[StatementLine],
    policy: Policy,
) -> StatementData:
    """Check the month and sum it up; pure, so it can be tested with lines written by hand."""
    assert client.id is not None
    reconcile(client.slug, month, opening, lines, closing)
    charges = live_charges(lines)
    return StatementData(
        client_id=client.id,
        slug=client.slug,
        name=client.name,
        plan=client.plan,
        hourly_rate_cents=client.hourly_rate_cents,
        contacts=tuple(contacts),
        month=month,
        opening=opening,
        closing=closing,
        lines=tuple(lines),
        charged_minutes=sum(line.charged for line in lines if line.charged > 0),
        credited_minutes=-sum(line.charged for line in lines if line.charged < 0),
        blocks=tuple(line for line in lines if line.kind == EntryKind.BLOCK.value),
        free_items=tuple(line for line in charges if line.free and line.category in _FREE_CATEGORIES),
        uncharged_contact_minutes=sum(
            max((line.contact_minutes or 0) - line.charged, 0) for line in charges if line.contact_minutes is not None
        ),
        nonplan=None if client.plan == Plan.PSP.value else nonplan_summary(lines, client.hourly_rate_cents, policy),
    )


def gather_statements(
    session: Session, month: StatementMonth, policy: Policy, client_slug: str | None = None
) -> list[StatementData]:
    """Statements of every client with something to state, in four queries however many clients.

    A PSP client with an account gets one every month, even a quiet one (it shows the balance); a
    client without a plan only for a month with items. `client_slug` states that client whatever.
    """
    clients = _clients(session, client_slug)
    ids = [c.id for c in clients]
    totals = _opening_and_closing(session, ids, month)
    lines = _lines(session, ids, month)
    contacts = _billing_contacts(session, ids)
    statements = []
    for client in clients:
        assert client.id is not None
        opening, closing, has_account = totals.get(client.id, (0, 0, False))
        month_lines = lines.get(client.id, [])
        quiet = not month_lines and (client.plan != Plan.PSP.value or not has_account)
        if client_slug is None and quiet:
            continue
        statements.append(
            build_statement(client, contacts.get(client.id, ()), month, opening, closing, month_lines, policy)
        )
    return statements


def _clients(session: Session, slug: str | None) -> list[Client]:
    query = sa.select(Client).order_by(col(Client.slug))
    if slug is not None:
        query = query.where(col(Client.slug) == slug)
    clients = list(session.execute(query).scalars())
    if slug is not None and not clients:
        raise NotFoundError(f"no client {slug!r}: `psp client list` shows the slugs")
    return clients


def _opening_and_closing(
    session: Session, ids: list[int | None], month: StatementMonth
) -> dict[int, tuple[int, int, bool]]:
    """Per client: balance before the month, balance at its end, whether it had entries by then."""
    before = sa.case((col(LedgerEntry.effective_on) < month.first, LedgerEntry.minutes), else_=0)
    rows = session.execute(
        sa.select(col(LedgerEntry.client_id), sa.func.sum(before), sa.func.sum(LedgerEntry.minutes))
        .where(col(LedgerEntry.client_id).in_(ids), col(LedgerEntry.effective_on) <= month.last)
        .group_by(col(LedgerEntry.client_id))
    )
    return {client_id: (int(opening), int(closing), True) for client_id, opening, closing in rows}


def _lines(session: Session, ids: list[int | None], month: StatementMonth) -> dict[int, list[StatementLine]]:
    """The month's entries of every client, with running balances over each whole history."""
    order = (col(LedgerEntry.effective_on), col(LedgerEntry.id))
    running = (
        sa.select(
            col(LedgerEntry.id),
            col(LedgerEntry.client_id),
            col(LedgerEntry.effective_on),
            col(LedgerEntry.kind),
            col(LedgerEntry.category),
            col(LedgerEntry.channel),
            col(LedgerEntry.subject),
            col(LedgerEntry.minutes),
            col(LedgerEntry.request_key),
            col(LedgerEntry.reverses_id),
            col(LedgerEntry.reason),
            col(Proposal.minutes).label("work_minutes"),
            col(Proposal.contact_minutes),
            col(Block.ref),
            sa.func.sum(LedgerEntry.minutes)
            .over(partition_by=col(LedgerEntry.client_id), order_by=order)
            .label("balance"),
        )
        .outerjoin(Proposal, col(Proposal.id) == LedgerEntry.proposal_id)
        .outerjoin(Block, col(Block.id) == LedgerEntry.block_id)
        .where(col(LedgerEntry.client_id).in_(ids), col(LedgerEntry.effective_on) <= month.last)
        .subquery()
    )
    query = (
        sa.select(running)
        .where(running.c.effective_on >= month.first)
        .order_by(running.c.client_id, running.c.effective_on, running.c.id)
    )
    by_client: dict[int, list[StatementLine]] = defaultdict(list)
    for r in session.execute(query):
        by_client[r.client_id].append(
            StatementLine(
                id=r.id,
                date=r.effective_on,
                kind=r.kind,
                category=r.category,
                channel=r.channel,
                subject=r.subject,
                charged=-r.minutes,
                balance=int(r.balance),
                work_minutes=int(r.work_minutes or 0) if r.kind == EntryKind.CHARGE.value else 0,
                contact_minutes=r.contact_minutes if r.kind == EntryKind.CHARGE.value else None,
                request_key=r.request_key,
                reverses=r.reverses_id,
                block_ref=r.ref,
                reason=r.reason,
            )
        )
    return by_client


def _billing_contacts(session: Session, ids: list[int | None]) -> dict[int, tuple[str, ...]]:
    rows = session.execute(
        sa.select(col(ClientEmail.client_id), col(ClientEmail.address))
        .where(col(ClientEmail.client_id).in_(ids), col(ClientEmail.billing))
        .order_by(col(ClientEmail.client_id), col(ClientEmail.address))
    )
    contacts: dict[int, list[str]] = defaultdict(list)
    for client_id, address in rows:
        contacts[client_id].append(address)
    return {client_id: tuple(addresses) for client_id, addresses in contacts.items()}
