"""Storing a batch of raw messages: each once, threaded, attributed, or quarantined.

One batch is one transaction, so a batch and the mailbox state that covers it land together.
Inside it each message has a savepoint: a message that cannot be stored is rolled back alone and
quarantined with the reason, and the rest of the batch goes on. Lookups are made per batch, not
per message: known content hashes, known locations, referenced Message-IDs, subjects.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from ingest.attribution import Attribution, AttributionKind, Directory, attribute
from ingest.errors import NotAnEmail
from ingest.files import RawMessage
from ingest.models import MailLocation, MailMessage, QuarantinedMessage
from ingest.noise import noise_reason
from ingest.parsing import ParsedEmail, content_hash, parse_message
from ingest.threads import new_thread_key, subject_key, thread_by_headers
from ledger.models import Category, Channel, ClientDomain, ClientEmail, SourceItem
from ledger.policy import generous_minutes
from ledger.proposals import propose
from psp.config import Settings

EXCERPT_CHARS = 2000
# Until the rules engine classifies mail, client mail is proposed as billable with this estimate.
PLACEHOLDER_CONTACT_MINUTES = 10


@dataclass
class IntakeSummary:
    """Counts of items, as `psp ingest/poll --json` print them."""

    read: int = 0
    stored: int = 0
    duplicate: int = 0
    ignored: int = 0
    quarantined: int = 0

    def add(self, other: IntakeSummary) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


def _text(value: str) -> str:
    """NUL is valid in mail but not in a PostgreSQL text column; the raw message keeps it."""
    return value.replace("\x00", "")


def parse_or_refusal(raw: bytes) -> ParsedEmail | NotAnEmail:
    """The parsed message, or the refusal to quarantine it with (picklable, for worker processes)."""
    try:
        return parse_message(raw)
    except NotAnEmail as exc:
        return exc


def load_directory(session: Session, settings: Settings) -> Directory:
    addresses = dict(session.exec(select(ClientEmail.address, ClientEmail.client_id)).all())
    domains = dict(session.exec(select(ClientDomain.domain, ClientDomain.client_id)).all())
    return Directory(
        addresses=addresses,
        domains=domains,
        staff_addresses=frozenset(a.lower() for a in settings.staff.addresses),
        staff_domains=frozenset(d.lower() for d in settings.staff.domains),
        trusted_authserv_id=settings.mail.trusted_authserv_id or None,
    )


@dataclass(frozen=True)
class _Incoming:
    """A parsed message with what the pure steps decided about it before any storage."""

    message: RawMessage
    parsed: ParsedEmail
    who: Attribution
    subject_key: str
    noise: str | None


@dataclass
class _BatchIndex:
    """What the batch already knows, from the database and from its own earlier messages.

    Attributes:
      threads_by_subject: subject key → (thread, time of its latest message).
    """

    hashes: dict[str, int] = field(default_factory=dict)
    locations: set[tuple[str, str, int, str]] = field(default_factory=set)
    threads_by_message_id: dict[str, str] = field(default_factory=dict)
    threads_by_subject: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    quarantined: set[str] = field(default_factory=set)


def _participant(parsed: ParsedEmail, who: Attribution, directory: Directory) -> str:
    """Who the conversation is with: the client, or the outside address."""
    if who.kind is AttributionKind.STAFF:
        # Our reply belongs to the request of the person we write to.
        outside = next(iter(parsed.recipients), None)
        counterpart = attribute(outside, (), replace(directory, trusted_authserv_id=None))
        if counterpart.client_id is not None:
            return f"client:{counterpart.client_id}"
        return outside or "staff"
    if who.client_id is not None:
        return f"client:{who.client_id}"
    return parsed.sender or "unknown"


class BatchStore:
    """Stores batches for one intake run; the caller owns the transaction of each batch."""

    def __init__(self, session: Session, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self.directory = load_directory(session, settings)
        self.window = timedelta(days=settings.mail.thread_window_days)

    def store(self, messages: Sequence[RawMessage]) -> IntakeSummary:
        """Parse and store a batch."""
        return self.store_parsed(messages, [parse_or_refusal(m.raw) for m in messages])

    def store_parsed(self, messages: Sequence[RawMessage], parsed: Sequence[ParsedEmail | NotAnEmail]) -> IntakeSummary:
        """Store a batch whose messages were parsed already (perhaps in other processes)."""
        summary = IntakeSummary(read=len(messages))
        incoming: list[_Incoming | tuple[RawMessage, NotAnEmail]] = []
        for message, result in zip(messages, parsed, strict=True):
            if isinstance(result, NotAnEmail):
                incoming.append((message, result))
                continue
            who = attribute(result.sender, result.auth_results, self.directory)
            key = subject_key(result.subject, _participant(result, who, self.directory))
            incoming.append(_Incoming(message, result, who, key, noise_reason(result)))
        index = self._index(messages, [i for i in incoming if isinstance(i, _Incoming)])
        # Any message may end in quarantine (unparseable, or refused by the database): know which are there.
        digests = [i.parsed.content_hash if isinstance(i, _Incoming) else content_hash(i[0].raw) for i in incoming]
        index.quarantined = set(
            self.session.exec(
                select(QuarantinedMessage.content_hash).where(col(QuarantinedMessage.content_hash).in_(digests))
            ).all()
        )
        for item in incoming:
            if isinstance(item, tuple):
                self._quarantine(item[0], str(item[1]), index, summary)
                continue
            outcome = self._store_one(item, index)
            if outcome.startswith("quarantine:"):
                self._quarantine(item.message, outcome.removeprefix("quarantine:"), index, summary)
            else:
                setattr(summary, outcome, getattr(summary, outcome) + 1)
        return summary

    def _index(self, messages: Sequence[RawMessage], incoming: Sequence[_Incoming]) -> _BatchIndex:
        """Everything the batch needs from the database, in a handful of queries."""
        index = _BatchIndex()
        hashes = [i.parsed.content_hash for i in incoming]
        if hashes:
            found = self.session.exec(
                select(MailMessage.content_hash, MailMessage.id).where(col(MailMessage.content_hash).in_(hashes))
            ).all()
            index.hashes = {h: i for h, i in found if i is not None}
        for source, folder in {(m.location.source, m.location.folder) for m in messages}:
            uids = [m.location.uid for m in messages if (m.location.source, m.location.folder) == (source, folder)]
            rows = self.session.exec(
                select(MailLocation.uidvalidity, MailLocation.uid).where(
                    MailLocation.source == source, MailLocation.folder == folder, col(MailLocation.uid).in_(uids)
                )
            ).all()
            index.locations.update((source, folder, v, u) for v, u in rows)
        referenced = {r for i in incoming for r in (*i.parsed.in_reply_to, *i.parsed.references)}
        if referenced:
            index.threads_by_message_id = dict(
                self.session.exec(
                    select(MailMessage.message_id, SourceItem.thread_key)
                    .join(SourceItem, col(SourceItem.id) == MailMessage.source_item_id)
                    .where(col(MailMessage.message_id).in_(referenced))
                ).all()
            )
        keys = {i.subject_key for i in incoming}
        if keys:
            subjects = self.session.exec(
                select(MailMessage.subject_key, SourceItem.thread_key, SourceItem.occurred_at)
                .join(SourceItem, col(SourceItem.id) == MailMessage.source_item_id)
                .where(col(MailMessage.subject_key).in_(keys))
                .order_by(col(SourceItem.occurred_at))
            ).all()
            index.threads_by_subject = {key: (thread, at) for key, thread, at in subjects}
        return index

    def _thread(self, incoming: _Incoming, when: datetime, index: _BatchIndex) -> str:
        """By reply headers, else the same subject and participants within the window, else new."""
        parsed = incoming.parsed
        by_headers = thread_by_headers((*parsed.in_reply_to, *reversed(parsed.references)), index.threads_by_message_id)
        if by_headers:
            return by_headers
        same_subject = index.threads_by_subject.get(incoming.subject_key)
        if same_subject and abs(when - same_subject[1]) <= self.window:
            return same_subject[0]
        return new_thread_key(parsed.message_id)

    def _store_one(self, incoming: _Incoming, index: _BatchIndex) -> str:
        loc = incoming.message.location
        place = (loc.source, loc.folder, loc.uidvalidity, loc.uid)
        try:
            with self.session.begin_nested():
                existing = index.hashes.get(incoming.parsed.content_hash)
                if existing is not None:
                    if place not in index.locations:
                        self.session.add(MailLocation(mail_message_id=existing, **asdict(loc)))
                        self.session.flush()
                        index.locations.add(place)
                    return "duplicate"
                return self._new_message(incoming, index)
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            return f"quarantine:could not be stored: {reason}"

    def _new_message(self, incoming: _Incoming, index: _BatchIndex) -> str:
        parsed, who, location = incoming.parsed, incoming.who, incoming.message.location
        when = parsed.date or datetime.now(UTC)
        thread = self._thread(incoming, when, index)
        item = SourceItem(
            client_id=who.client_id,
            channel=Channel.EMAIL.value,
            subject=_text(parsed.subject)[:998] or "(no subject)",
            excerpt=_text(parsed.new_text)[:EXCERPT_CHARS],
            sender=parsed.sender,
            occurred_at=when,
            thread_key=thread,
            source_key=f"mail:{parsed.content_hash}",
        )
        self.session.add(item)
        self.session.flush()
        assert item.id is not None
        stored = MailMessage(
            source_item_id=item.id,
            content_hash=parsed.content_hash,
            message_id=parsed.message_id[:998],
            in_reply_to=" ".join(parsed.in_reply_to),
            references=" ".join(parsed.references),
            sender=parsed.sender,
            recipients=" ".join(parsed.recipients),
            direction="out" if who.kind is AttributionKind.STAFF else "in",
            attribution=who.kind.value,
            noise=incoming.noise,
            subject_key=incoming.subject_key,
            size=parsed.size,
            raw=zlib.compress(incoming.message.raw, 6),
        )
        self.session.add(stored)
        self.session.flush()
        assert stored.id is not None
        self.session.add(MailLocation(mail_message_id=stored.id, **asdict(location)))
        if incoming.noise is None and who.kind is not AttributionKind.STAFF:
            self._propose(item, who)
        self.session.flush()
        index.hashes[parsed.content_hash] = stored.id
        index.locations.add((location.source, location.folder, location.uidvalidity, location.uid))
        index.threads_by_message_id[parsed.message_id] = thread
        latest = index.threads_by_subject.get(incoming.subject_key)
        if latest is None or latest[1] <= when:
            index.threads_by_subject[incoming.subject_key] = (thread, when)
        return "ignored" if incoming.noise is not None else "stored"

    def _propose(self, item: SourceItem, who: Attribution) -> None:
        """A client's mail is proposed as billable; a stranger's waits for staff as pre-sales."""
        category = Category.BILLABLE if who.client_id is not None else Category.PRE_SALES
        estimate = generous_minutes(
            PLACEHOLDER_CONTACT_MINUTES, self.settings.policy, billable=category is Category.BILLABLE
        )
        propose(
            self.session,
            item,
            category=category,
            contact_minutes=PLACEHOLDER_CONTACT_MINUTES,
            minutes=estimate.minutes,
            rule="placeholder",
            explanation=f"rule placeholder: {who.reason}; {estimate.reason}",
        )

    def _quarantine(self, message: RawMessage, reason: str, index: _BatchIndex, summary: IntakeSummary) -> None:
        digest = content_hash(message.raw)
        if digest in index.quarantined:
            summary.duplicate += 1
            return
        index.quarantined.add(digest)
        self.session.add(
            QuarantinedMessage(
                **asdict(message.location),
                content_hash=digest,
                reason=reason,
                size=len(message.raw),
                raw=zlib.compress(message.raw, 6),
            )
        )
        summary.quarantined += 1
