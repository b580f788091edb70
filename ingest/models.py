"""Tables of intake: stored mail, where each message was seen, mailbox state, quarantine.

A message is stored once by content (`mail_message.content_hash`), whatever mailbox or import it
came through; each place it was seen is a `mail_location` row, unique per (source, folder,
UIDVALIDITY, UID), so a re-poll, a crash mid-poll or a UIDVALIDITY change neither loses nor
doubles anything. Raw bytes are kept packed (`ingest.packing`) so an item can be re-classified later.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from ledger.models import utc_column, utcnow


class MailMessage(SQLModel, table=True):
    """The stored copy of one message, with what threading and attribution need.

    Attributes:
      content_hash: sha256 of the message with line endings normalised; the dedupe key.
      direction: `in` (from a client or stranger) or `out` (our staff's reply).
      attribution: how the client was found: address, domain, staff, unmatched, unverified.
      noise: why the message is automated (auto-reply, bounce…), or None for human mail.
    """

    __tablename__ = "mail_message"

    id: int | None = Field(default=None, primary_key=True)
    source_item_id: int = Field(foreign_key="source_item.id", unique=True)
    content_hash: str = Field(unique=True, max_length=64)
    message_id: str = Field(max_length=998, index=True)
    in_reply_to: str = Field(default="", sa_type=sa.Text)
    references: str = Field(default="", sa_type=sa.Text, description="space-separated Message-IDs")
    sender: str | None = Field(default=None, max_length=320, index=True)
    recipients: str = Field(default="", sa_type=sa.Text)
    direction: str = Field(max_length=3)
    attribution: str = Field(max_length=16)
    noise: str | None = Field(default=None, max_length=200)
    subject_key: str = Field(max_length=500, index=True, description="fallback thread identity")
    size: int
    raw: bytes = Field(sa_type=sa.LargeBinary)


class MailLocation(SQLModel, table=True):
    """Where a stored message was seen: a mailbox UID, or a file imported by `psp ingest`."""

    __tablename__ = "mail_location"
    __table_args__ = (sa.UniqueConstraint("source", "folder", "uidvalidity", "uid", name="mail_location_unique"),)

    id: int | None = Field(default=None, primary_key=True)
    mail_message_id: int = Field(foreign_key="mail_message.id", index=True)
    source: str = Field(max_length=200, description="IMAP account name, or `file`")
    folder: str = Field(max_length=500)
    uidvalidity: int = Field(default=0, sa_type=sa.BigInteger)
    uid: str = Field(max_length=500, description="IMAP UID, or the file's key in its folder")
    seen_at: datetime = utc_column(default=utcnow)


class MailboxState(SQLModel, table=True):
    """Progress and health of one IMAP folder: the highest UID stored under its UIDVALIDITY.

    Written in the same transaction as the messages of each batch, so after a crash the next
    poll resumes exactly after the last committed batch.
    """

    __tablename__ = "mailbox_state"
    __table_args__ = (sa.UniqueConstraint("account", "folder", name="mailbox_state_folder_unique"),)

    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(max_length=200)
    folder: str = Field(max_length=500)
    uidvalidity: int = Field(default=0, sa_type=sa.BigInteger)
    last_uid: int = Field(default=0, sa_type=sa.BigInteger)
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    last_success_at: datetime | None = utc_column(nullable=True)
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    last_error_at: datetime | None = utc_column(nullable=True)


class QuarantinedMessage(SQLModel, table=True):
    """A message that could not be parsed or stored, kept raw with the reason for staff."""

    __tablename__ = "quarantined_message"

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=200)
    folder: str = Field(max_length=500)
    uidvalidity: int = Field(default=0, sa_type=sa.BigInteger)
    uid: str = Field(max_length=500)
    content_hash: str = Field(unique=True, max_length=64)
    reason: str = Field(sa_type=sa.Text)
    size: int
    raw: bytes = Field(sa_type=sa.LargeBinary)
    created_at: datetime = utc_column(default=utcnow)
    attempts: int = 1
    resolved_item_id: int | None = Field(default=None, foreign_key="source_item.id")
