"""The IMAP source: read each configured folder once, in UID batches, exactly once into the ledger.

State is (account, folder, UIDVALIDITY, highest UID stored), kept in `mailbox_state` and written in
the same transaction as the batch it covers: a poll killed at any moment resumes after the last
committed batch, and the batch that was cut off is fetched again and stored then. Messages are
fetched with `BODY.PEEK[]` in batches (never one round trip per message, never marking mail read
or deleting it). A UIDVALIDITY change resets the folder's progress: it is read again, and every
message already stored is recognised by content and only gains its new location.

On PostgreSQL several pollers may share the database: each folder is polled under an advisory
lock, and a poller that finds the folder busy leaves it to the other.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from ingest.errors import IngestError
from ingest.files import Location, RawMessage
from ingest.models import MailboxState
from ingest.parallel import BatchParser
from ingest.summary import IntakeSummary
from psp import db
from psp.config import ImapAccount, Settings

if TYPE_CHECKING:
    from ingest.prepared import Prepared
    from ingest.store import BatchStore

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 60
# What breaks a connection: the network, TLS, or the server saying no.
CONNECTION_ERRORS = (OSError, ssl.SSLError, IMAPClientError)


class ImapError(IngestError):
    """An IMAP server cannot be reached, refuses the login, or a folder cannot be read."""


def password_for(account: ImapAccount) -> str:
    password = os.environ.get(account.password_env)
    if not password:
        raise ImapError(f"IMAP account {account.name!r}: set the password in ${account.password_env}")
    return password


def connect(account: ImapAccount) -> IMAPClient:
    """The one place an IMAP connection is made: TLS unless plaintext was asked for by name."""
    password = password_for(account)
    context = ssl.create_default_context(cafile=account.cafile or None)
    where = f"{account.host}:{account.port}"
    try:
        client = IMAPClient(
            account.host, account.port, ssl=account.security == "ssl", ssl_context=context, timeout=TIMEOUT_SECONDS
        )
        # imapclient turns imaplib's debug level up to copy every line into its logger; at
        # our batch sizes that text copy of each message costs more than the fetch itself.
        client._imap.debug = 0
        if account.security == "starttls":
            client.starttls(context)  # fails loudly: never falls back to plaintext
        client.login(account.user, password)
    except CONNECTION_ERRORS as exc:
        raise ImapError(f"IMAP account {account.name!r} ({where}): {exc}") from exc
    return client


def _lock_key(account: str, folder: str) -> int:
    digest = hashlib.sha256(f"{account}\0{folder}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def folder_lock(engine: Engine, account: str, folder: str) -> Iterator[bool]:
    """Hold the folder for this poller (PostgreSQL advisory lock); yields False when it is busy.

    SQLite needs none: its writers take turns, and the state check in each batch keeps two
    pollers from storing a range twice.
    """
    if engine.dialect.name != "postgresql":
        yield True
        return
    key = _lock_key(account, folder)
    with engine.connect() as connection:
        got = bool(connection.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        connection.commit()
        try:
            yield got
        finally:
            if got:
                connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                connection.commit()


def _state(session: Session, account: str, folder: str) -> MailboxState:
    """The folder's state row, locked for this transaction (created on first sight)."""
    query = select(MailboxState).where(MailboxState.account == account, MailboxState.folder == folder)
    state = session.exec(query.with_for_update()).first()
    if state is None:
        session.add(MailboxState(account=account, folder=folder))
        session.flush()
        state = session.exec(query.with_for_update()).one()
    return state


def record_error(engine: Engine, account: str, folder: str, error: str) -> None:
    """Note a folder's failure for the health view, in a transaction of its own."""
    with db.transaction(engine) as session:
        state = _state(session, account, folder)
        state.last_error = error
        state.last_error_at = datetime.now(UTC)
        session.add(state)


@dataclass(frozen=True)
class FolderStart:
    """Where a poll of a folder begins."""

    uidvalidity: int
    last_uid: int
    reset: bool


def _begin(engine: Engine, account: str, folder: str, uidvalidity: int) -> FolderStart:
    with db.transaction(engine) as session:
        state = _state(session, account, folder)
        reset = state.uidvalidity != uidvalidity
        if reset:
            if state.uidvalidity:
                log.warning(
                    "%s/%s: UIDVALIDITY %s → %s, reading the folder again",
                    account,
                    folder,
                    state.uidvalidity,
                    uidvalidity,
                )
            state.uidvalidity, state.last_uid = uidvalidity, 0
            session.add(state)
        return FolderStart(uidvalidity, state.last_uid, reset)


BatchLog = Callable[[str, str, IntakeSummary], None]


def poll_folder(
    engine: Engine,
    settings: Settings,
    account: ImapAccount,
    client: IMAPClient,
    folder: str,
    on_batch: BatchLog | None = None,
    parser: BatchParser | None = None,
) -> IntakeSummary:
    """Store every message of `folder` above the stored UID, batch by batch."""
    parser = parser or BatchParser(workers=1)
    total = IntakeSummary()
    with folder_lock(engine, account.name, folder) as mine:
        if not mine:
            log.info("%s/%s is being polled by another poller; skipped", account.name, folder)
            return total
        selected = client.select_folder(folder, readonly=True)
        uidvalidity = int(selected[b"UIDVALIDITY"])
        start = _begin(engine, account.name, folder, uidvalidity)
        uidnext = selected.get(b"UIDNEXT")
        if uidnext is not None and int(uidnext) <= start.last_uid + 1:
            _store_batch(engine, settings, account.name, folder, uidvalidity, start.last_uid, [], list)
            return total  # nothing new: an idle poll costs one SELECT and one state update
        uids = sorted(u for u in client.search(["UID", f"{start.last_uid + 1}:*"]) if u > start.last_uid)

        def fetched_batches() -> Iterator[FetchedBatch]:
            for offset in range(0, len(uids), settings.mail.batch_size):
                chunk = uids[offset : offset + settings.mail.batch_size]
                fetched = client.fetch(chunk, ["BODY.PEEK[]"])
                messages = [
                    RawMessage(Location(account.name, folder, uidvalidity, str(uid)), fetched[uid][b"BODY[]"])
                    for uid in chunk
                    if uid in fetched  # a message expunged meanwhile is simply gone
                ]
                yield FetchedBatch(chunk[-1], messages)

        def store(batch: FetchedBatch, prepared: Callable[[], list[Prepared]]) -> None:
            where = (account.name, folder, uidvalidity)
            total.add(_store_batch(engine, settings, *where, batch.highest_uid, batch.messages, prepared, on_batch))

        parser.pipeline(fetched_batches(), FetchedBatch.raws, store)
    return total


@dataclass(frozen=True)
class FetchedBatch:
    """UIDs up to `highest_uid` as fetched: the messages still in the folder."""

    highest_uid: int
    messages: list[RawMessage]

    def raws(self) -> list[bytes]:
        return [message.raw for message in self.messages]


def _store_batch(
    engine: Engine,
    settings: Settings,
    account: str,
    folder: str,
    uidvalidity: int,
    highest_uid: int,
    batch: list[RawMessage],
    prepared: Callable[[], list[Prepared]],
    on_batch: BatchLog | None = None,
) -> IntakeSummary:
    """Store a batch and advance the folder's state in one transaction."""
    results = prepared()
    with db.transaction(engine) as session:
        state = _state(session, account, folder)
        if state.uidvalidity != uidvalidity:
            raise ImapError(f"{account}/{folder}: UIDVALIDITY changed during the poll; poll again")
        # Another poller may have been quicker with part of this range.
        fresh = [(m, p) for m, p in zip(batch, results, strict=True) if int(m.location.uid) > state.last_uid]
        summary = (
            _batch_store(session, settings).store_prepared([m for m, _ in fresh], [p for _, p in fresh])
            if fresh
            else IntakeSummary()
        )
        state.last_uid = max(state.last_uid, highest_uid)
        state.stored += summary.stored + summary.ignored
        state.duplicates += summary.duplicate
        state.quarantined += summary.quarantined
        state.last_success_at = datetime.now(UTC)
        state.last_error = None
        session.add(state)
    if on_batch is not None and batch:
        on_batch(account, folder, summary)
    return summary


def _batch_store(session: Session, settings: Settings) -> BatchStore:
    """Intake's storing half (the rules engine, the ledger's posting), loaded with the first batch
    that has mail in it: an idle poll, the usual one from cron, starts 0.07 s sooner without it."""
    store: BatchStore = importlib.import_module("ingest.store").BatchStore(session, settings)
    return store


def poll_account(
    engine: Engine, settings: Settings, account: ImapAccount, on_batch: BatchLog | None = None
) -> tuple[IntakeSummary, list[str]]:
    """Poll each folder of an account once; a failing folder is recorded and the others go on."""
    total, errors = IntakeSummary(), []
    try:
        client = connect(account)
    except ImapError as exc:
        for folder in account.folders:
            record_error(engine, account.name, folder, str(exc))
        return total, [str(exc)]

    def counted(account_name: str, folder: str, summary: IntakeSummary) -> None:
        total.add(summary)  # committed batches count even when a later one fails
        if on_batch is not None:
            on_batch(account_name, folder, summary)

    try:
        with BatchParser(settings.mail.parse_workers or None) as parser:
            for folder in account.folders:
                try:
                    poll_folder(engine, settings, account, client, folder, counted, parser)
                except (*CONNECTION_ERRORS, ImapError) as exc:
                    message = f"{account.name}/{folder}: {exc}"
                    record_error(engine, account.name, folder, message)
                    errors.append(message)
                    if isinstance(exc, (OSError, IMAPClientAbortError)):
                        break  # the connection is gone; the next poll reconnects
    finally:
        try:
            client.logout()
        except CONNECTION_ERRORS:
            log.debug("%s: logout failed on a broken connection", account.name)
    return total, errors


@dataclass(frozen=True)
class FolderHealth:
    account: str
    folder: str
    uidvalidity: int
    last_uid: int
    stored: int
    duplicates: int
    quarantined: int
    last_success_at: str | None
    last_error: str | None
    last_error_at: str | None


def mailbox_health(session: Session) -> list[FolderHealth]:
    """Every folder ever polled, with its progress and its last error (one query)."""
    states = session.exec(select(MailboxState).order_by(MailboxState.account, MailboxState.folder)).all()
    return [
        FolderHealth(
            account=s.account,
            folder=s.folder,
            uidvalidity=s.uidvalidity,
            last_uid=s.last_uid,
            stored=s.stored,
            duplicates=s.duplicates,
            quarantined=s.quarantined,
            last_success_at=s.last_success_at.isoformat() if s.last_success_at else None,
            last_error=s.last_error,
            last_error_at=s.last_error_at.isoformat() if s.last_error_at else None,
        )
        for s in states
    ]
