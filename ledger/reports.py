"""Balances and the Support Tracking Report, each read with one query.

The running balance (the seed's column D) is a window sum over the client's entries in ledger
order (date, then id), computed by the database over the whole history and then cut to the
requested dates, so a report that starts mid-history still shows true balances.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from ledger.models import Category, Client, LedgerEntry, Proposal, ProposalStatus

# Categories whose pending minutes would reduce the balance if approved as proposed.
CHARGEABLE = (Category.BILLABLE.value, Category.PROJECT_PREP.value)


@dataclass(frozen=True)
class Balance:
    """Posted balance beside what is still waiting.

    Attributes:
      balance_minutes: sum of posted entries (blocks minus charges).
      pending_minutes: chargeable minutes proposed and not yet reviewed.
      held_minutes: approved project prep waiting for the client's project decision.
    """

    client: str
    plan: str
    balance_minutes: int
    pending_minutes: int
    held_minutes: int

    @property
    def projected_minutes(self) -> int:
        """The balance if everything pending and held were charged as it stands."""
        return self.balance_minutes - self.pending_minutes - self.held_minutes


def balance(session: Session, client: Client, as_of: date | None = None) -> Balance:
    """Posted balance (at the end of `as_of`, if given) beside what waits now."""
    posted_filter = [col(LedgerEntry.client_id) == client.id]
    if as_of is not None:
        posted_filter.append(col(LedgerEntry.effective_on) <= as_of)
    posted = sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.minutes), 0)).where(*posted_filter).scalar_subquery()

    def waiting(status: ProposalStatus, categories: tuple[str, ...]) -> sa.ScalarSelect[int]:
        return (
            sa.select(sa.func.coalesce(sa.func.sum(Proposal.minutes), 0))
            .where(
                col(Proposal.client_id) == client.id,
                col(Proposal.status) == status.value,
                col(Proposal.category).in_(categories),
                ~sa.exists().where(col(LedgerEntry.proposal_id) == Proposal.id, col(LedgerEntry.kind) == "charge")
                if status is ProposalStatus.APPROVED
                else sa.true(),
            )
            .scalar_subquery()
        )

    row = session.execute(
        sa.select(
            posted,
            waiting(ProposalStatus.PENDING, CHARGEABLE),
            waiting(ProposalStatus.APPROVED, (Category.PROJECT_PREP.value,)),
        )
    ).one()
    return Balance(client.slug, client.plan, int(row[0]), int(row[1]), int(row[2]))


@dataclass(frozen=True)
class LedgerLine:
    """One posted entry with the balance after it.

    Attributes:
      minutes: signed as stored: credits positive, charges negative, free items 0.
      balance: running balance after this entry (column D).
    """

    id: int
    date: date
    kind: str
    category: str | None
    channel: str | None
    subject: str
    minutes: int
    balance: int
    reverses: int | None
    reason: str

    @classmethod
    def from_row(cls, r: sa.Row[Any]) -> LedgerLine:
        """From a row of ledger_entry's columns plus the running `balance`."""
        return cls(
            id=r.id,
            date=r.effective_on,
            kind=r.kind,
            category=r.category,
            channel=r.channel,
            subject=r.subject,
            minutes=r.minutes,
            balance=int(r.balance),
            reverses=r.reverses_id,
            reason=r.reason,
        )


def ledger_lines(
    session: Session, client: Client, start: date | None = None, end: date | None = None
) -> list[LedgerLine]:
    """The client's entries in ledger order with running balances, optionally cut to dates.

    A cut reads only its own rows: their balances are the sum of everything dated before `start`
    plus a window over the rows themselves, which equals the window over the whole history.
    """
    columns = [
        col(c)
        for c in (
            LedgerEntry.id,
            LedgerEntry.effective_on,
            LedgerEntry.kind,
            LedgerEntry.category,
            LedgerEntry.channel,
            LedgerEntry.subject,
            LedgerEntry.minutes,
            LedgerEntry.reverses_id,
            LedgerEntry.reason,
        )
    ]
    order = (col(LedgerEntry.effective_on), col(LedgerEntry.id))
    where = [col(LedgerEntry.client_id) == client.id]
    before: sa.ColumnElement[int] = sa.literal(0)
    if start is not None:
        where.append(col(LedgerEntry.effective_on) >= start)
        before = (
            sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.minutes), 0))
            .where(col(LedgerEntry.client_id) == client.id, col(LedgerEntry.effective_on) < start)
            .scalar_subquery()
        )
    if end is not None:
        where.append(col(LedgerEntry.effective_on) <= end)
    balance_after = (before + sa.func.sum(LedgerEntry.minutes).over(order_by=order)).label("balance")
    query = sa.select(*columns, balance_after).where(*where).order_by(*order)
    return [LedgerLine.from_row(r) for r in session.execute(query)]


@dataclass(frozen=True)
class ReportRow:
    """A row of the Support Tracking Report: Date · Issue · Time · PSP Balance, plus context.

    Attributes:
      minutes: what the row charged: positive for time charged, 0 for a free item, negative
        for a credit (a block purchase, a reversed charge); balance = previous balance − minutes.
    """

    date: date
    issue: str
    channel: str | None
    category: str | None
    kind: str
    minutes: int
    balance: int
    note: str

    @property
    def free(self) -> bool:
        return self.minutes == 0 and self.kind == "charge"


def tracking_report(lines: list[LedgerLine]) -> list[ReportRow]:
    return [
        ReportRow(
            date=line.date,
            issue=line.subject,
            channel=line.channel,
            category=line.category,
            kind=line.kind,
            minutes=-line.minutes,
            balance=line.balance,
            note=line.reason,
        )
        for line in lines
    ]
