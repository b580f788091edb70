"""Renewal notices: when a PSP balance first falls to or below a threshold, tell the client once.

One notice per threshold per block: buying a block re-arms every threshold. Safe to run from cron
every few minutes: what was noticed is recorded before the mail goes out, and a notice whose mail
was not accepted is retried on the next run (`notify.outbox.deliver_pending`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from ledger.models import Block, Client, ClientEmail, LedgerEntry, Plan, Proposal, ProposalStatus
from notify.compose import render
from notify.mailer import Composed
from notify.models import RenewalNotice
from notify.outbox import record
from psp.config import Settings

BURN_WINDOW_DAYS = 90
RECENT_ITEMS = 5


def thresholds_crossed(balance: int, thresholds: Iterable[int], notified: Iterable[int]) -> list[int]:
    """Thresholds at or above the balance that have not had their notice for this block."""
    done = set(notified)
    return sorted(t for t in set(thresholds) if balance <= t and t not in done)


def run_out_date(balance: int, charged_in_window: int, window_days: int, today: date) -> date | None:
    """When the balance reaches zero at the recent burn rate; None when nothing was charged."""
    if balance <= 0:
        return today
    if charged_in_window <= 0:
        return None
    return today + timedelta(days=math.ceil(balance * window_days / charged_in_window))


@dataclass(frozen=True)
class RecentItem:
    date: date
    subject: str
    minutes: int


@dataclass(frozen=True)
class DueNotice:
    """A client whose balance crossed thresholds since its last block, with what the notice says."""

    client_id: int
    slug: str
    name: str
    block_id: int
    balance: int
    pending: int
    thresholds: tuple[int, ...]
    contacts: tuple[str, ...]
    recent: tuple[RecentItem, ...]
    run_out: date | None


def renewals_due(session: Session, settings: Settings, today: date) -> list[DueNotice]:
    """Every PSP client owed a notice, in a handful of queries whatever the number of clients."""
    balances = dict(
        session.exec(
            select(LedgerEntry.client_id, sa.func.sum(LedgerEntry.minutes))
            .join(Client, col(Client.id) == LedgerEntry.client_id)
            .where(col(Client.plan) == Plan.PSP.value)
            .group_by(col(LedgerEntry.client_id))
        ).all()
    )
    latest_block = {
        client_id: int(block_id)
        for client_id, block_id in session.exec(
            select(Block.client_id, sa.func.max(Block.id)).group_by(col(Block.client_id))
        ).all()
        if block_id is not None
    }
    notified: dict[tuple[int, int], list[int]] = {}
    for client_id, block_id, threshold in session.exec(
        select(RenewalNotice.client_id, RenewalNotice.block_id, RenewalNotice.threshold)
    ).all():
        notified.setdefault((client_id, block_id), []).append(threshold)
    crossed = {
        client_id: thresholds_crossed(
            int(balance), settings.policy.renewal_thresholds, notified.get((client_id, latest_block[client_id]), ())
        )
        for client_id, balance in balances.items()
        if client_id in latest_block
    }
    due = [client_id for client_id, thresholds in crossed.items() if thresholds]
    if not due:
        return []
    return _details(session, settings, today, due, balances, latest_block, crossed)


def _details(
    session: Session,
    settings: Settings,
    today: date,
    due: Sequence[int],
    balances: dict[int, int],
    latest_block: dict[int, int],
    crossed: dict[int, list[int]],
) -> list[DueNotice]:
    clients = {c.id: c for c in session.exec(select(Client).where(col(Client.id).in_(due))).all()}
    contacts: dict[int, list[str]] = {}
    for client_id, address in session.exec(
        select(ClientEmail.client_id, ClientEmail.address).where(
            col(ClientEmail.client_id).in_(due), col(ClientEmail.billing).is_(True)
        )
    ).all():
        contacts.setdefault(client_id, []).append(address)
    pending = dict(
        session.exec(
            select(Proposal.client_id, sa.func.sum(Proposal.minutes))
            .where(col(Proposal.client_id).in_(due), col(Proposal.status) == ProposalStatus.PENDING.value)
            .where(col(Proposal.category).in_(["billable", "project-prep"]))
            .group_by(col(Proposal.client_id))
        ).all()
    )
    since = today - timedelta(days=BURN_WINDOW_DAYS)
    burned = dict(
        session.exec(
            select(LedgerEntry.client_id, -sa.func.sum(LedgerEntry.minutes))
            .where(col(LedgerEntry.client_id).in_(due), col(LedgerEntry.effective_on) > since)
            .where(col(LedgerEntry.kind) != "block")
            .group_by(col(LedgerEntry.client_id))
        ).all()
    )
    recent: dict[int, list[RecentItem]] = {}
    for client_id, day, subject, minutes in session.execute(
        sa.select(
            col(LedgerEntry.client_id),
            col(LedgerEntry.effective_on),
            col(LedgerEntry.subject),
            col(LedgerEntry.minutes),
        )
        .where(col(LedgerEntry.client_id).in_(due), col(LedgerEntry.kind) != "block")
        .order_by(col(LedgerEntry.effective_on).desc(), col(LedgerEntry.id).desc())
    ).all():
        items = recent.setdefault(client_id, [])
        if len(items) < RECENT_ITEMS:
            items.append(RecentItem(day, subject, -minutes))
    return [
        DueNotice(
            client_id=client_id,
            slug=clients[client_id].slug,
            name=clients[client_id].name,
            block_id=latest_block[client_id],
            balance=int(balances[client_id]),
            pending=int(pending.get(client_id) or 0),
            thresholds=tuple(crossed[client_id]),
            contacts=tuple(sorted(contacts.get(client_id, ()))),
            recent=tuple(recent.get(client_id, ())),
            run_out=run_out_date(int(balances[client_id]), int(burned.get(client_id) or 0), BURN_WINDOW_DAYS, today),
        )
        for client_id in due
    ]


def compose_notice(notice: DueNotice, settings: Settings) -> Composed:
    context = {"notice": notice, "block_minutes": settings.policy.block_minutes, "sender": settings.smtp.sender}
    return Composed(
        kind="renewal",
        to=notice.contacts,
        cc=tuple(settings.staff.addresses),
        subject=f"Your support balance: {notice.balance} minutes left — time to renew your Priority Support Plan",
        text=render("renewal.txt", context),
        html=render("renewal.html", context),
    )


def record_notice(session: Session, notice: DueNotice, settings: Settings) -> int:
    """Record the notice and its composed mail (pending); returns the outgoing mail's id."""
    mail_id = record(session, compose_notice(notice, settings), settings, client_id=notice.client_id)
    for threshold in notice.thresholds:
        session.add(
            RenewalNotice(
                client_id=notice.client_id,
                block_id=notice.block_id,
                threshold=threshold,
                balance_minutes=notice.balance,
                outgoing_mail_id=mail_id,
            )
        )
    return mail_id
