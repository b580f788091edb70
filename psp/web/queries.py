"""What the pages read: each screen is a fixed handful of queries, never one per row.

The report page reuses the ledger's definition of the running balance (a window sum over the
client's whole history in ledger order) and cuts a page out of it in the same query; the
`(client_id, effective_on, id)` index serves both. Rows come back as the ledger's `ReportRow`, so
the web shows exactly what `psp report` prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlmodel import Session, col

from ledger.models import Category, Client, LedgerEntry, Project, ProjectStatus, Proposal, ProposalStatus, SourceItem
from ledger.reports import CHARGEABLE, LedgerLine, ReportRow, tracking_report
from ledger.statements import StatementMonth
from notify.models import Statement

PAGE_SIZE = 50
# Proposals per review page: a screenful of decisions, and a page that renders fast with any backlog.
QUEUE_PAGE_SIZE = 100
EXCERPT_CHARS = 400


@dataclass(frozen=True)
class ReportPage:
    """One page of the Support Tracking Report, newest first.

    Attributes:
      total: rows matching the month filter, over all pages.
    """

    rows: list[ReportRow]
    total: int
    page: int
    pages: int


def _report_rows(
    session: Session, client: Client, month: date | None, *, limit: int | None, offset: int = 0
) -> tuple[list[ReportRow], int]:
    """Report rows newest first with their running balances, and how many rows match: one statement.

    The rows are read in index order (LIMIT/OFFSET); their balances are the sum of everything
    before the oldest of them plus a window over the rows themselves, so the result equals the
    ledger's definition (a window over the whole history) without sorting that whole history.
    """
    entry = LedgerEntry.__table__.c  # type: ignore[attr-defined]
    where = [entry.client_id == client.id]
    if month is not None:
        chosen = StatementMonth(month.year, month.month)
        where += [entry.effective_on >= chosen.first, entry.effective_on <= chosen.last]
    rows = (
        sa.select(
            entry.id,
            entry.effective_on,
            entry.kind,
            entry.category,
            entry.channel,
            entry.subject,
            entry.minutes,
            entry.reverses_id,
            entry.reason,
        )
        .where(*where)
        .order_by(entry.effective_on.desc(), entry.id.desc())
        .limit(limit)
        .offset(offset)
        .cte("page_rows")
    )
    oldest = sa.select(rows.c.effective_on, rows.c.id).order_by(rows.c.effective_on, rows.c.id).limit(1).cte("oldest")
    before = (
        sa.select(sa.func.coalesce(sa.func.sum(entry.minutes), 0))
        .select_from(LedgerEntry.__table__.join(oldest, sa.true()))  # type: ignore[attr-defined]
        .where(
            entry.client_id == client.id,
            sa.or_(
                entry.effective_on < oldest.c.effective_on,
                sa.and_(entry.effective_on == oldest.c.effective_on, entry.id < oldest.c.id),
            ),
        )
        .scalar_subquery()
    )
    total = sa.select(sa.func.count()).select_from(LedgerEntry.__table__).where(*where).scalar_subquery()  # type: ignore[attr-defined]
    running = sa.func.sum(rows.c.minutes).over(order_by=(rows.c.effective_on, rows.c.id))
    query = sa.select(rows, (before + running).label("balance"), total.label("total")).order_by(
        rows.c.effective_on.desc(), rows.c.id.desc()
    )
    result = session.execute(query).all()
    lines = [LedgerLine.from_row(r) for r in result]
    return tracking_report(lines), int(result[0].total) if result else 0


def report_page(session: Session, client: Client, month: date | None, page: int) -> ReportPage:
    """A page of the client's report (optionally one month of it), newest first."""
    page = max(page, 1)
    rows, total = _report_rows(session, client, month, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    return ReportPage(rows, total, page, max(1, -(-total // PAGE_SIZE)))


def balance_series(session: Session, client: Client) -> list[tuple[date, int]]:
    """The balance at the end of every day that had entries, oldest first (one grouped query)."""
    days = session.execute(
        sa.select(col(LedgerEntry.effective_on), sa.func.sum(LedgerEntry.minutes))
        .where(col(LedgerEntry.client_id) == client.id)
        .group_by(col(LedgerEntry.effective_on))
        .order_by(col(LedgerEntry.effective_on))
    ).all()
    series = []
    running = 0
    for day, minutes in days:
        running += int(minutes)
        series.append((day, running))
    return series


@dataclass(frozen=True)
class StatementRow:
    id: int
    month: str
    version: int
    closing_minutes: int
    created_at: datetime


def statements(session: Session, client: Client) -> list[StatementRow]:
    """The client's monthly statements as kept, newest month first (content not loaded)."""
    rows = session.execute(
        sa.select(
            col(Statement.id),
            col(Statement.month),
            col(Statement.version),
            col(Statement.closing_minutes),
            col(Statement.created_at),
        )
        .where(col(Statement.client_id) == client.id)
        .order_by(col(Statement.month).desc(), col(Statement.version).desc())
    ).all()
    return [StatementRow(*row) for row in rows]


@dataclass(frozen=True)
class ClientOverview:
    """A client on the staff overview: where its balance stands and when we last heard of it."""

    slug: str
    name: str
    plan: str
    balance_minutes: int
    pending_minutes: int
    pending_count: int
    last_activity: datetime | None
    last_entry_on: date | None


def client_overview(session: Session) -> list[ClientOverview]:
    """Every client with balance, pending review and last activity: one query of grouped subqueries."""
    entries = (
        sa.select(
            col(LedgerEntry.client_id).label("client_id"),
            sa.func.sum(LedgerEntry.minutes).label("balance"),
            sa.func.max(LedgerEntry.effective_on).label("last_day"),
        )
        .group_by(col(LedgerEntry.client_id))
        .subquery()
    )
    chargeable = sa.case((col(Proposal.category).in_(CHARGEABLE), col(Proposal.minutes)), else_=0)
    pending = (
        sa.select(
            col(Proposal.client_id).label("client_id"),
            sa.func.sum(chargeable).label("minutes"),
            sa.func.count().label("count"),
        )
        .where(col(Proposal.status) == ProposalStatus.PENDING.value)
        .group_by(col(Proposal.client_id))
        .subquery()
    )
    items = (
        sa.select(col(SourceItem.client_id).label("client_id"), sa.func.max(SourceItem.occurred_at).label("last_at"))
        .group_by(col(SourceItem.client_id))
        .subquery()
    )
    rows = session.execute(
        sa.select(
            col(Client.slug),
            col(Client.name),
            col(Client.plan),
            sa.func.coalesce(entries.c.balance, 0),
            sa.func.coalesce(pending.c.minutes, 0),
            sa.func.coalesce(pending.c.count, 0),
            items.c.last_at,
            entries.c.last_day,
        )
        .outerjoin(entries, entries.c.client_id == Client.id)
        .outerjoin(pending, pending.c.client_id == Client.id)
        .outerjoin(items, items.c.client_id == Client.id)
        .order_by(col(Client.slug))
    ).all()
    return [
        ClientOverview(
            slug=slug,
            name=name,
            plan=plan,
            balance_minutes=int(balance),
            pending_minutes=int(minutes),
            pending_count=int(count),
            last_activity=_aware(last_at),
            last_entry_on=last_day,
        )
        for slug, name, plan, balance, minutes, count, last_at, last_day in rows
    ]


def _aware(moment: datetime | None) -> datetime | None:
    """Aggregates bypass the column type: naive UTC from the database becomes aware again."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class QueueItem:
    """A pending proposal as the review queue shows it: the proposal, its item and an excerpt."""

    id: int
    client: str | None
    client_name: str | None
    thread_key: str
    category: str
    minutes: int
    proposed_minutes: int
    contact_minutes: int
    rule: str
    explanation: str
    project_id: int | None
    channel: str
    subject: str
    sender: str | None
    excerpt: str
    occurred_at: datetime


@dataclass(frozen=True)
class QueuePage:
    """A page of the review queue; `total` counts every pending proposal the filter matches."""

    items: list[QueueItem]
    total: int
    page: int
    pages: int


def pending_queue(
    session: Session, client: Client | None = None, *, unmatched: bool = False, page: int = 1
) -> QueuePage:
    """Pending proposals by client, then thread (oldest thread first), then time; a page, one query.

    `unmatched` lists instead the items whose sender no client claims: they wait for assignment.
    """
    query = (
        sa.select(
            col(Proposal.id),
            col(Client.slug),
            col(Client.name),
            col(SourceItem.thread_key),
            col(Proposal.category),
            col(Proposal.minutes),
            col(Proposal.proposed_minutes),
            col(Proposal.contact_minutes),
            col(Proposal.rule),
            col(Proposal.explanation),
            col(Proposal.project_id),
            col(SourceItem.channel),
            col(SourceItem.subject),
            col(SourceItem.sender),
            sa.func.substr(SourceItem.excerpt, 1, EXCERPT_CHARS),
            col(SourceItem.occurred_at),
            sa.func.count().over(),
        )
        .join(SourceItem, col(SourceItem.id) == Proposal.source_item_id)
        .outerjoin(Client, col(Client.id) == Proposal.client_id)
        .where(col(Proposal.status) == ProposalStatus.PENDING.value)
        .order_by(
            col(Client.slug),
            sa.func.min(SourceItem.occurred_at).over(
                partition_by=(col(Proposal.client_id), col(SourceItem.thread_key))
            ),
            col(SourceItem.thread_key),
            col(SourceItem.occurred_at),
            col(Proposal.id),
        )
        .limit(QUEUE_PAGE_SIZE)
        .offset((max(page, 1) - 1) * QUEUE_PAGE_SIZE)
    )
    if unmatched:
        query = query.where(col(Proposal.client_id).is_(None))
    elif client is not None:
        query = query.where(col(Proposal.client_id) == client.id)
    else:
        query = query.where(col(Proposal.client_id).is_not(None))
    rows = session.execute(query).all()
    total = int(rows[0][-1]) if rows else 0
    items = [QueueItem(*row[:-1]) for row in rows]
    return QueuePage(items, total, max(page, 1), max(1, -(-total // QUEUE_PAGE_SIZE)))


@dataclass(frozen=True)
class ProjectChoice:
    id: int
    client: str
    name: str
    status: str
    decided_on: date | None
    prep_minutes: int


def projects(session: Session, *, open_only: bool = False, client: Client | None = None) -> list[ProjectChoice]:
    """Projects with the prep minutes approved against them (held or posted), in one query."""
    prep = (
        sa.select(col(Proposal.project_id).label("project_id"), sa.func.sum(Proposal.minutes).label("minutes"))
        .where(
            col(Proposal.status) == ProposalStatus.APPROVED.value,
            col(Proposal.category) == Category.PROJECT_PREP.value,
        )
        .group_by(col(Proposal.project_id))
        .subquery()
    )
    query = (
        sa.select(
            col(Project.id),
            col(Client.slug),
            col(Project.name),
            col(Project.status),
            col(Project.decided_on),
            sa.func.coalesce(prep.c.minutes, 0),
        )
        .join(Client, col(Client.id) == Project.client_id)
        .outerjoin(prep, prep.c.project_id == Project.id)
        .order_by(col(Client.slug), col(Project.id))
    )
    if open_only:
        query = query.where(col(Project.status) == ProjectStatus.PROPOSED.value)
    if client is not None:
        query = query.where(col(Project.client_id) == client.id)
    rows = session.execute(query).all()
    return [ProjectChoice(i, slug, name, status, day, int(m)) for i, slug, name, status, day, m in rows]
