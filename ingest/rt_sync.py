"""`psp sync rt`: read the tickets changed since the last sync, store each transaction once.

A sync searches the configured queues for tickets updated at or after the cursor (TicketSQL on
LastUpdated, by id, page by page), reads each ticket's history and fetches the content of the
transactions not stored yet. Each page is one database transaction: its entries, and the sync
state with them.

The cursor moves only with the last page of a complete sync, to RT's own clock when the search
began (the HTTP Date of its first page), and the next search starts OVERLAP before it. RT keeps
seconds only, and a ticket updated while we read (or by a request that commits late) may carry
a time just before the moment we saw; reading such tickets again costs one history request each,
and their known transactions are recognised by id and counted as duplicates. A sync that stops
half-way (RT down, a crash) leaves the cursor where it was: the next one reads the same tickets
again and stores only what is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from classify.service import Classifier
from ingest.errors import IngestError, NotAnEmail
from ingest.imap import folder_lock
from ingest.noise import noise_reason
from ingest.parsing import parse_message
from ingest.request_tracker import Content, RequestTracker, RequestTrackerError, Ticket, Transaction
from ingest.summary import IntakeSummary
from ingest.ticket_models import TicketSyncState
from ingest.ticket_store import SYSTEM_CHARS, TicketMessage, TicketStore, known_entries
from psp import db
from psp.config import Settings

OVERLAP = timedelta(seconds=60)
EMPTY = Content(text="", subject="", raw_headers="", attachments=0)  # a transaction without attachments

PageLog = Callable[[int, IntakeSummary], None]


def system_name(url: str) -> str:
    """The helpdesk's identity in the ledger: its base URL."""
    system = url.rstrip("/")
    if len(system) > SYSTEM_CHARS:
        raise IngestError(f"[rt].url is longer than {SYSTEM_CHARS} characters")
    return system


def _state(session: Session, system: str) -> TicketSyncState:
    """The helpdesk's state row, locked for this transaction (new on the first sync)."""
    query = select(TicketSyncState).where(TicketSyncState.system == system)
    return session.exec(query.with_for_update()).first() or TicketSyncState(system=system)


def message_for(system: str, ticket: Ticket, transaction: Transaction, content: Content | None) -> TicketMessage:
    """One RT transaction as a ticket entry; the ticket's subject names every entry of it."""
    text = plain_text(content) if content else ""
    return TicketMessage(
        system=system,
        ticket=str(ticket.id),
        entry=str(transaction.id),
        kind=transaction.kind,
        subject=ticket.subject,
        text=text,
        author=transaction.author,
        requestors=ticket.requestors,
        occurred_at=transaction.created,
        time_taken=transaction.time_taken,
        queue=ticket.queue,
        custom_fields=ticket.custom_fields,
        headers=content.headers if content else MappingProxyType({}),
        attachments=content.attachments if content else 0,
        noise=automated(content, text) if content else None,
    )


def plain_text(content: Content) -> str:
    """The words of a transaction; HTML (RT's editor, HTML-only mail) goes through the mail parser."""
    if content.content_type != "text/html":
        return content.text
    try:
        return parse_message(f"Content-Type: text/html; charset=utf-8\n\n{content.text}".encode()).text
    except NotAnEmail:
        return content.text


def automated(content: Content, text: str) -> str | None:
    """Why a transaction that came in by mail is automated (an auto-reply, a bounce), or None.

    RT records such mail like any other correspondence; its original headers are on the
    transaction's first attachment, and the mail rules judge them with the words (`plain_text`).
    """
    if not content.raw_headers:
        return None
    try:
        return noise_reason(parse_message(f"{content.raw_headers}\n\n{text}".encode()))
    except NotAnEmail:
        return None


@dataclass(frozen=True)
class _Run:
    """What every page of one sync uses: the database, the settings and rules, RT, its name."""

    engine: Engine
    settings: Settings
    classifier: Classifier
    client: RequestTracker
    system: str


def sync_rt(
    engine: Engine, settings: Settings, client: RequestTracker | None = None, on_page: PageLog | None = None
) -> IntakeSummary:
    """Read what changed in RT since the last sync; the summary counts transactions."""
    system = system_name(settings.rt.url)
    run = _Run(engine, settings, Classifier.from_settings(settings), client or RequestTracker(settings.rt), system)
    # On PostgreSQL, syncs sharing the database (a watcher and a manual sync) take turns.
    with folder_lock(engine, "request-tracker", system) as ours:
        if not ours:
            raise IngestError(f"another sync of {system} is running; try again when it has finished")
        with db.transaction(engine) as session:
            cursor = _state(session, system).cursor
        try:
            return _sync_pages(run, cursor, on_page)
        except RequestTrackerError as exc:
            record_error(engine, system, str(exc))
            raise


def _start(cursor: datetime | None, settings: Settings) -> datetime | None:
    """Where the search begins: the cursor less the overlap; on the first sync, `[rt].since` (or all)."""
    if cursor is not None:
        return cursor - OVERLAP
    if settings.rt.since:
        return datetime.combine(date.fromisoformat(settings.rt.since), time(), UTC)
    return None


def _sync_pages(run: _Run, cursor: datetime | None, on_page: PageLog | None) -> IntakeSummary:
    since = _start(cursor, run.settings)
    total = IntakeSummary()
    next_cursor = cursor
    number = 1
    while True:
        page = run.client.tickets(since, number)
        if number == 1 and page.server_time is not None:
            next_cursor = page.server_time
        summary = _store_page(run, page.tickets, next_cursor if page.last else None)
        total.add(summary)
        if on_page is not None:
            on_page(number, summary)
        if page.last:
            return total
        number += 1


def _store_page(run: _Run, tickets: tuple[Ticket, ...], new_cursor: datetime | None) -> IntakeSummary:
    """Fetch what is new on a page of tickets, then store it and the state in one transaction."""
    with db.transaction(run.engine) as session:
        known = known_entries(session, run.system, [str(t.id) for t in tickets])
    messages: list[TicketMessage] = []
    for ticket in tickets:
        history = list(run.client.history(ticket.id))
        new = {t.id for t in history if (str(ticket.id), str(t.id)) not in known}
        contents = run.client.contents(ticket.id, min(new)) if new else {}
        for transaction in history:  # one stored already is only counted, as a duplicate
            content = contents.get(transaction.id, EMPTY) if transaction.id in new else None
            messages.append(message_for(run.system, ticket, transaction, content))
    try:
        with db.transaction(run.engine) as session:
            state = _state(session, run.system)
            summary = TicketStore(session, run.settings, run.classifier).store(messages)
            state.stored += summary.stored + summary.ignored
            state.duplicates += summary.duplicate
            if new_cursor is not None:
                state.cursor = new_cursor
                state.last_success_at = datetime.now(UTC)
                state.last_error = state.last_error_at = None
            session.add(state)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise IngestError(f"tickets {tickets[0].id}–{tickets[-1].id} could not be stored: {reason}") from exc
    return summary


def record_error(engine: Engine, system: str, error: str) -> None:
    """Keep the failure for the health view; the cursor stays where it was."""
    with db.transaction(engine) as session:
        state = _state(session, system)
        state.last_error, state.last_error_at = error, datetime.now(UTC)
        session.add(state)


@dataclass(frozen=True)
class SyncHealth:
    """One helpdesk's sync state as `psp sync status` shows it (times as ISO text, UTC)."""

    system: str
    cursor: str | None
    stored: int
    duplicates: int
    last_success_at: str | None
    last_error: str | None
    last_error_at: str | None


def sync_health(session: Session) -> list[SyncHealth]:
    def text(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    states = session.exec(select(TicketSyncState).order_by(col(TicketSyncState.system))).all()
    return [
        SyncHealth(
            s.system,
            text(s.cursor),
            s.stored,
            s.duplicates,
            text(s.last_success_at),
            s.last_error,
            text(s.last_error_at),
        )
        for s in states
    ]
