"""Outgoing mail as records: composed and stored first, then delivered, then marked.

Recording before sending means a crash can only repeat a message, never lose one; marking after
the relay accepted it means nothing is reported sent that was not.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ingest.packing import pack, unpack
from ledger.models import utcnow
from notify.errors import PermanentMailError, TransientMailError
from notify.mailer import Composed, Mailer, build_message, send_with_retries, wire_bytes
from notify.models import OutgoingMail
from psp import db
from psp.config import Settings


def record(session: Session, composed: Composed, settings: Settings, *, client_id: int | None) -> int:
    """Store a composed message as pending; returns its id."""
    message = build_message(composed, settings.smtp.sender)
    mail = OutgoingMail(
        kind=composed.kind,
        client_id=client_id,
        recipients=", ".join((*composed.to, *composed.cc)),
        subject=composed.subject,
        message_id=str(message["Message-ID"]),
        raw=pack(wire_bytes(message)),
    )
    session.add(mail)
    session.flush()
    assert mail.id is not None
    return mail.id


@dataclass(frozen=True)
class Delivery:
    mail_id: int
    recipients: str
    subject: str
    status: str
    error: str | None


def deliver_pending(
    engine: Engine,
    mailer: Mailer,
    pause_seconds: float = 2.0,
    advance: Callable[[int], None] = lambda remaining: None,
    only: Collection[int] | None = None,
) -> list[Delivery]:
    """Send every pending message (or those of `only`), each in its own transaction; failures are
    kept with the reason.

    `advance` hears how many are pending before the first and after each (for a progress bar).
    """
    pending = select(OutgoingMail.id).where(col(OutgoingMail.status) == "pending").order_by(col(OutgoingMail.id))
    if only is not None:
        pending = pending.where(col(OutgoingMail.id).in_(only))
    with Session(engine) as session:
        ids = session.exec(pending).all()
    results = []
    advance(len(ids))
    for done, mail_id in enumerate(ids, start=1):
        with db.transaction(engine) as session:
            mail = session.get(OutgoingMail, mail_id)
            assert mail is not None
            try:
                mail.attempts += send_with_retries(mailer, unpack(mail.raw), pause_seconds)
                mail.status, mail.sent_at, mail.last_error = "sent", utcnow(), None
            except TransientMailError as exc:
                mail.attempts += 1
                mail.last_error = f"will retry: {exc}"
            except PermanentMailError as exc:
                mail.attempts += 1
                mail.status, mail.last_error = "failed", str(exc)
            session.add(mail)
            results.append(Delivery(mail_id or 0, mail.recipients, mail.subject, mail.status, mail.last_error))
        advance(len(ids) - done)
    return results
