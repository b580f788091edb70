"""Tables of helpdesk intake: each ticket entry stored once, and the sync state per helpdesk.

A ticket entry is one transaction of a ticket (RT's create, correspond, comment) or one row of a
ticket export. It is stored once per (system, ticket, entry), so a re-sync, a sync that stopped
half-way or a re-import neither loses nor doubles anything. The sync state of a helpdesk is
written in the same database transaction as the entries its cursor covers.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from ledger.models import utc_column


class TicketEntry(SQLModel, table=True):
    """One stored ticket transaction (or export row), beside the source item it became.

    Attributes:
      system: the helpdesk: an RT base URL, or the `[tickets].system` name of an import.
      ticket: the ticket's id in that system; the ticket is the support request (thread).
      entry: the transaction id in RT; for an import, the row's entry id (or `ticket`).
      kind: create, correspond, comment (RT), or row (an import).
      author: address of whoever wrote it (RT: the transaction's creator).
      author_kind: staff, client or unknown.
      time_taken: minutes the helpdesk recorded on it (RT TimeTaken); None when none were recorded.
      queue: the helpdesk queue, for the rules.
      custom_fields: the ticket's custom fields as JSON (name → list of values), for the rules.
      content_hash: sha256 of what was read, so a changed row under a known id is noticed.
    """

    __tablename__ = "ticket_entry"
    __table_args__ = (sa.UniqueConstraint("system", "ticket", "entry", name="ticket_entry_unique"),)

    id: int | None = Field(default=None, primary_key=True)
    source_item_id: int = Field(foreign_key="source_item.id", unique=True)
    system: str = Field(max_length=200)
    ticket: str = Field(max_length=100)
    entry: str = Field(max_length=100)
    kind: str = Field(max_length=16)
    author: str | None = Field(default=None, max_length=320)
    author_kind: str = Field(max_length=16)
    time_taken: int | None = None
    queue: str = Field(default="", max_length=200)
    custom_fields: str = Field(default="{}", sa_type=sa.Text)
    content_hash: str = Field(max_length=64)


class TicketSyncState(SQLModel, table=True):
    """Progress and health of one helpdesk: the cursor the next sync starts from.

    Attributes:
      cursor: tickets updated at or after this moment (UTC) are read again by the next sync; it
        moves only with the last page of a complete sync, in that page's transaction.
    """

    __tablename__ = "ticket_sync_state"

    id: int | None = Field(default=None, primary_key=True)
    system: str = Field(unique=True, max_length=200)
    cursor: datetime | None = utc_column(nullable=True)
    stored: int = 0
    duplicates: int = 0
    last_success_at: datetime | None = utc_column(nullable=True)
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    last_error_at: datetime | None = utc_column(nullable=True)
