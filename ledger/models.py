"""Tables of the ledger: clients, blocks, source items, proposals, projects, entries, audit.

Minutes are integers everywhere. Timestamps are stored in UTC (`UTCDateTime`); calendar dates
(`effective_on`, `purchased_on`) are dates in the consultancy's time zone, as they appear on a
report. Ledger entries are append-only: the migration adds triggers that refuse UPDATE and
DELETE on `ledger_entry`, so a correction can only be a reversal entry.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Stores aware datetimes as naive UTC and gives them back aware, on every backend."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC time is required")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


# Stable constraint names, so migrations can refer to them on every backend.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def utc_column(nullable: bool = False, **kwargs: Any) -> Any:
    return Field(sa_column=sa.Column(UTCDateTime(), nullable=nullable, **kwargs))


def _one_of(column: str, values: type[StrEnum], nullable: bool = False) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{v.value}'" for v in values)
    condition = f"{column} IN ({allowed})"
    if nullable:
        condition = f"{column} IS NULL OR {condition}"
    return sa.CheckConstraint(condition, name=f"{column}_allowed")


class Plan(StrEnum):
    PSP = "psp"
    NONE = "none"


class Channel(StrEnum):
    EMAIL = "email"
    TICKET = "ticket"
    PHONE = "phone"
    SKYPE = "skype"
    ONSITE = "onsite"


class Category(StrEnum):
    BILLABLE = "billable"
    MODULE_BUG = "module-bug"
    PRE_SALES = "pre-sales"
    PROJECT_PREP = "project-prep"
    IGNORED = "ignored"


class ProposalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class ProjectStatus(StrEnum):
    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    DECLINED = "declined"


class EntryKind(StrEnum):
    BLOCK = "block"
    CHARGE = "charge"
    REVERSAL = "reversal"


class Client(SQLModel, table=True):
    """A customer of the consultancy; `slug` names it on the command line."""

    __table_args__ = (_one_of("plan", Plan),)

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(unique=True, max_length=80)
    name: str = Field(max_length=200)
    plan: str = Field(default=Plan.PSP.value, max_length=8)
    hourly_rate_cents: int = Field(default=0, description="rate for work outside a plan, minor units")
    created_at: datetime = utc_column(default=utcnow)


class ClientEmail(SQLModel, table=True):
    """A contact address of a client (lower-case); mail from it is attributed to the client."""

    __tablename__ = "client_email"

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="client.id", index=True)
    address: str = Field(unique=True, max_length=320)
    billing: bool = Field(default=True, description="receives notices and statements")


class ClientDomain(SQLModel, table=True):
    """A mail domain of a client; any sender there is attributed to the client."""

    __tablename__ = "client_domain"

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="client.id", index=True)
    domain: str = Field(unique=True, max_length=253)


class Block(SQLModel, table=True):
    """A purchased block of PSP minutes; its ledger entry is the credit."""

    __table_args__ = (sa.CheckConstraint("minutes > 0", name="block_minutes_positive"),)

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="client.id", index=True)
    minutes: int
    ref: str | None = Field(default=None, max_length=200)
    purchased_on: date
    created_at: datetime = utc_column(default=utcnow)


class SourceItem(SQLModel, table=True):
    """One interaction with a client: a mail, a ticket reply, a logged call.

    Attributes:
      source_key: unique identity of the item in its source, so it is stored once.
      thread_key: the support request it belongs to (the unit of the non-plan minimum).
      occurred_at: when it happened, UTC.
    """

    __tablename__ = "source_item"
    __table_args__ = (_one_of("channel", Channel),)

    id: int | None = Field(default=None, primary_key=True)
    client_id: int | None = Field(default=None, foreign_key="client.id", index=True)
    channel: str = Field(max_length=16)
    subject: str = Field(max_length=998)
    excerpt: str = Field(default="", sa_type=sa.Text)
    sender: str | None = Field(default=None, max_length=320)
    occurred_at: datetime = utc_column()
    thread_key: str = Field(max_length=300, index=True)
    source_key: str = Field(unique=True, max_length=300)
    created_at: datetime = utc_column(default=utcnow)


class Project(SQLModel, table=True):
    """A proposed piece of development; its prep time is held until the client decides."""

    __table_args__ = (
        _one_of("status", ProjectStatus),
        sa.UniqueConstraint("client_id", "name", name="project_client_name_unique"),
    )

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="client.id", index=True)
    name: str = Field(max_length=200)
    status: str = Field(default=ProjectStatus.PROPOSED.value, max_length=16)
    created_at: datetime = utc_column(default=utcnow)
    decided_on: date | None = None
    decided_by: str | None = Field(default=None, max_length=320)


class Proposal(SQLModel, table=True):
    """Minutes proposed for one source item, waiting for (or carrying) a staff decision.

    Attributes:
      proposed_category, proposed_minutes: what the rule said; never changed.
      category, minutes: what will be (or was) posted; staff may change them when approving.
      contact_minutes: estimated contact time, kept so clients can see what was not charged.
      revision: how many times a posting of it was reversed and it went back to review; part
        of the posting's idempotency key, so a re-approval after a reversal posts anew.
    """

    __table_args__ = (
        _one_of("status", ProposalStatus),
        _one_of("category", Category),
        sa.CheckConstraint("minutes >= 0", name="proposal_minutes_not_negative"),
        sa.Index("ix_proposal_status_client", "status", "client_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source_item_id: int = Field(foreign_key="source_item.id", unique=True)
    client_id: int | None = Field(default=None, foreign_key="client.id")
    status: str = Field(default=ProposalStatus.PENDING.value, max_length=16)
    category: str = Field(max_length=16)
    minutes: int
    proposed_category: str = Field(max_length=16)
    proposed_minutes: int
    contact_minutes: int
    rule: str = Field(max_length=100)
    explanation: str = Field(sa_type=sa.Text)
    project_id: int | None = Field(default=None, foreign_key="project.id", index=True)
    created_at: datetime = utc_column(default=utcnow)
    decided_at: datetime | None = utc_column(nullable=True)
    decided_by: str | None = Field(default=None, max_length=320)
    decision_note: str | None = Field(default=None, sa_type=sa.Text)
    revision: int = 0


class LedgerEntry(SQLModel, table=True):
    """One posted movement of minutes; never updated or deleted.

    Attributes:
      minutes: signed; credits (blocks) positive, charges negative, free items 0.
      logged_minutes: the approved minutes behind a charge, before the non-plan minimum; the
        request's running total of these decides what the minimum still adds.
      idempotency_key: one entry per cause (`proposal:7`, `block:3`, `reversal:12`).
      reverses_id: the entry this one cancels; unique, so an entry is reversed at most once.
      reason: the policy's one-line account of the amount.
    """

    __tablename__ = "ledger_entry"
    __table_args__ = (
        _one_of("kind", EntryKind),
        _one_of("category", Category, nullable=True),
        # Ledger order per client, with the minutes: balances and running sums read the index alone.
        sa.Index("ix_ledger_entry_client_day_minutes", "client_id", "effective_on", "id", "minutes"),
        sa.Index("ix_ledger_entry_request", "client_id", "request_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="client.id")
    effective_on: date
    posted_at: datetime = utc_column(default=utcnow)
    kind: str = Field(max_length=16)
    category: str | None = Field(default=None, max_length=16)
    minutes: int
    logged_minutes: int = 0
    channel: str | None = Field(default=None, max_length=16)
    subject: str = Field(max_length=998)
    request_key: str | None = Field(default=None, max_length=300)
    proposal_id: int | None = Field(default=None, foreign_key="proposal.id", index=True)
    project_id: int | None = Field(default=None, foreign_key="project.id")
    block_id: int | None = Field(default=None, foreign_key="block.id")
    source_item_id: int | None = Field(default=None, foreign_key="source_item.id")
    reverses_id: int | None = Field(default=None, foreign_key="ledger_entry.id", unique=True)
    idempotency_key: str = Field(unique=True, max_length=100)
    reason: str = Field(sa_type=sa.Text)
    actor: str = Field(max_length=320)


class AuditEvent(SQLModel, table=True):
    """A staff action: who did what to which record, when, with the details as JSON."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = utc_column(default=utcnow)
    actor: str = Field(max_length=320)
    action: str = Field(max_length=64)
    target: str = Field(max_length=100, index=True)
    detail: str = Field(default="{}", sa_type=sa.Text)
