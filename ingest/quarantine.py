"""Quarantine: messages kept raw with the reason they could not be parsed or stored.

Nothing here deletes a message. A retry that succeeds links the quarantined copy to the item it
became; one that fails counts the attempt and keeps the newest reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, col, select

from ingest.errors import NotAnEmail, QuarantineNotFoundError
from ingest.files import Location, RawMessage
from ingest.models import MailMessage, QuarantinedMessage
from ingest.packing import unpack
from ingest.parsing import parse_message
from ingest.prepared import Prepared
from ingest.store import BatchStore
from psp.config import Settings


@dataclass(frozen=True)
class QuarantineRow:
    id: int
    created_at: str
    source: str
    folder: str
    uid: str
    size: int
    attempts: int
    reason: str


def list_quarantine(session: Session) -> list[QuarantineRow]:
    """Messages still waiting for staff, newest first (raw bytes are not loaded)."""
    columns = [
        col(c)
        for c in (
            QuarantinedMessage.id,
            QuarantinedMessage.created_at,
            QuarantinedMessage.source,
            QuarantinedMessage.folder,
            QuarantinedMessage.uid,
            QuarantinedMessage.size,
            QuarantinedMessage.attempts,
            QuarantinedMessage.reason,
        )
    ]
    rows = session.execute(
        sa.select(*columns)
        .where(col(QuarantinedMessage.resolved_item_id).is_(None))
        .order_by(col(QuarantinedMessage.id).desc())
    ).all()
    return [
        QuarantineRow(id=i or 0, created_at=at.isoformat(), source=s, folder=f, uid=u, size=n, attempts=a, reason=r)
        for i, at, s, f, u, n, a, r in rows
    ]


def show_quarantined(session: Session, quarantine_id: int) -> QuarantinedMessage:
    entry = session.get(QuarantinedMessage, quarantine_id)
    if entry is None:
        raise QuarantineNotFoundError(f"no quarantined message {quarantine_id} (see `psp quarantine list`)")
    return entry


def retry_quarantined(session: Session, settings: Settings, quarantine_id: int) -> str:
    """Parse and store the message again; say what became of it."""
    entry = show_quarantined(session, quarantine_id)
    if entry.resolved_item_id is not None:
        return f"message {quarantine_id} was already stored as item {entry.resolved_item_id}"
    raw = unpack(entry.raw)
    try:
        parsed = parse_message(raw)
    except NotAnEmail as exc:
        entry.attempts += 1
        entry.reason = str(exc)
        session.add(entry)
        return f"still quarantined (attempt {entry.attempts}): {exc}"
    location = Location(entry.source, entry.folder, entry.uidvalidity, entry.uid)
    BatchStore(session, settings).store_prepared([RawMessage(location, raw)], [Prepared(parsed, entry.raw)])
    item_id = session.exec(
        select(MailMessage.source_item_id).where(MailMessage.content_hash == parsed.content_hash)
    ).first()
    if item_id is None:
        entry.attempts += 1
        session.add(entry)
        return f"still quarantined (attempt {entry.attempts}): {entry.reason}"
    entry.resolved_item_id = item_id
    session.add(entry)
    return f"message {quarantine_id} stored as item {item_id}"
