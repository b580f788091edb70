"""Tables of outgoing mail: every message we send, and which renewal notices went out."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from ledger.models import utc_column, utcnow


class OutgoingMail(SQLModel, table=True):
    """One message we composed: marked sent only once a relay accepted it (or it was written out).

    Attributes:
      status: pending (composed, not yet accepted), sent, or failed (refused for good).
      message_id: the Message-ID we gave it, so replies and bounces can be matched.
    """

    __tablename__ = "outgoing_mail"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    client_id: int | None = Field(default=None, foreign_key="client.id", index=True)
    recipients: str = Field(sa_type=sa.Text)
    subject: str = Field(max_length=998)
    message_id: str = Field(unique=True, max_length=300)
    status: str = Field(default="pending", max_length=16, index=True)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = utc_column(default=utcnow)
    sent_at: datetime | None = utc_column(nullable=True)
    raw: bytes = Field(sa_type=sa.LargeBinary)


class RenewalNotice(SQLModel, table=True):
    """A renewal notice sent for a block at a threshold; unique, so never two for the same pair."""

    __tablename__ = "renewal_notice"
    __table_args__ = (sa.UniqueConstraint("client_id", "block_id", "threshold", name="renewal_notice_once"),)

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="client.id")
    block_id: int = Field(foreign_key="block.id")
    threshold: int
    balance_minutes: int
    outgoing_mail_id: int | None = Field(default=None, foreign_key="outgoing_mail.id")
    created_at: datetime = utc_column(default=utcnow)


class Statement(SQLModel, table=True):
    """A monthly statement as it was sent: frozen content and its hash, never rewritten.

    A client's month is stated once; `psp statements --resend` adds the next version rather than
    changing what the client already received.

    Attributes:
      month: the statement month in the consultancy's time zone, as YYYY-MM.
      content_hash: SHA-256 over the text, HTML, CSV and PDF, in that order, to show it is unchanged.
    """

    __tablename__ = "statement"
    __table_args__ = (sa.UniqueConstraint("client_id", "month", "version", name="statement_version_once"),)

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="client.id", index=True)
    month: str = Field(max_length=7)
    version: int = 1
    opening_minutes: int
    closing_minutes: int
    content_hash: str = Field(max_length=64)
    text_body: str = Field(sa_type=sa.Text)
    html_body: str = Field(sa_type=sa.Text)
    csv_attachment: str = Field(sa_type=sa.Text)
    pdf_attachment: bytes = Field(sa_type=sa.LargeBinary)
    outgoing_mail_id: int | None = Field(default=None, foreign_key="outgoing_mail.id")
    created_at: datetime = utc_column(default=utcnow)
