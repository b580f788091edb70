"""Storing a batch of raw messages: each once, threaded, attributed, or quarantined.

One batch is one transaction, so a batch and the mailbox state that covers it land together.
Inside it each message has a savepoint: a message that cannot be stored is rolled back alone and
quarantined with the reason, and the rest of the batch goes on. Lookups are made per batch, not
per message: known content hashes, known locations, referenced Message-IDs, subjects.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from classify.estimate import count_words, minutes_for
from classify.service import Classifier, load_world
from ingest.attribution import Attribution, AttributionKind, Directory, attribute, counterpart
from ingest.errors import NotAnEmail
from ingest.files import RawMessage
from ingest.models import MailLocation, MailMessage, QuarantinedMessage
from ingest.noise import noise_reason
from ingest.parsing import ParsedEmail, content_hash, parse_message
from ingest.threads import new_thread_key, subject_key, thread_by_headers
from ledger.models import Category, Channel, Proposal, ProposalStatus, SourceItem
from ledger.policy import generous_minutes
from ledger.posting import approve
from ledger.proposals import propose
from psp.config import Settings

EXCERPT_CHARS = 2000


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
    thread_categories: dict[str, str] = field(default_factory=dict)
    pending_by_thread: dict[str, int] = field(default_factory=dict)


def _participant(parsed: ParsedEmail, who: Attribution, directory: Directory) -> str:
    """Who the conversation is with: the client, or the outside address."""
    client_id = counterpart(parsed, who, directory)
    if client_id is not None:
        return f"client:{client_id}"
    if who.kind is AttributionKind.STAFF:
        return next(iter(parsed.recipients), None) or "staff"
    return parsed.sender or "unknown"


class BatchStore:
    """Stores batches for one intake run; the caller owns the transaction of each batch."""

    def __init__(self, session: Session, settings: Settings, classifier: Classifier | None = None) -> None:
        self.session = session
        self.settings = settings
        self.classifier = classifier or Classifier.from_settings(settings)
        self.world = load_world(session, settings)
        self.directory = self.world.directory
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
        self._index_threads(index)
        return index

    def _index_threads(self, index: _BatchIndex) -> None:
        """The category of each known thread (its first proposal) and its latest pending proposal."""
        threads = set(index.threads_by_message_id.values()) | {t for t, _ in index.threads_by_subject.values()}
        if not threads:
            return
        rows = self.session.exec(
            select(SourceItem.thread_key, Proposal.id, Proposal.proposed_category, Proposal.status)
            .join(Proposal, col(Proposal.source_item_id) == SourceItem.id)
            .where(col(SourceItem.thread_key).in_(threads))
            .order_by(col(SourceItem.occurred_at), col(Proposal.id))
        ).all()
        for thread, proposal_id, category, status in rows:
            index.thread_categories.setdefault(thread, category)
            if status == ProposalStatus.PENDING.value and proposal_id is not None:
                index.pending_by_thread[thread] = proposal_id

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
        outcome = self._decide(incoming, item, thread, index)
        self.session.flush()
        index.hashes[parsed.content_hash] = stored.id
        index.locations.add((location.source, location.folder, location.uidvalidity, location.uid))
        index.threads_by_message_id[parsed.message_id] = thread
        latest = index.threads_by_subject.get(incoming.subject_key)
        if latest is None or latest[1] <= when:
            index.threads_by_subject[incoming.subject_key] = (thread, when)
        return outcome

    def _decide(self, incoming: _Incoming, item: SourceItem, thread: str, index: _BatchIndex) -> str:
        """Classify: a pending proposal for client or stranger mail, reply time for our own mail."""
        if incoming.who.kind is AttributionKind.STAFF:
            if incoming.noise is None and thread in index.pending_by_thread:
                self._add_reply_time(index.pending_by_thread[thread], incoming.parsed)
            return "ignored" if incoming.noise else "stored"
        decision = self.classifier.mail(
            incoming.parsed,
            incoming.who,
            self.world,
            noise=incoming.noise,
            thread_category=index.thread_categories.get(thread),
            folder=incoming.message.location.folder,
        )
        if decision.category is Category.IGNORED:
            return "ignored"
        proposal = propose(
            self.session,
            item,
            category=decision.category,
            contact_minutes=decision.contact_minutes,
            minutes=decision.minutes,
            rule=decision.rule,
            explanation=decision.explanation,
            project_id=decision.project_id,
        )
        assert proposal.id is not None
        index.thread_categories.setdefault(thread, decision.category.value)
        index.pending_by_thread[thread] = proposal.id
        if decision.auto_approve and item.client_id is not None:
            approve(self.session, f"rule:{decision.rule}", proposal.id, self.settings.policy)
        return "stored"

    def _add_reply_time(self, proposal_id: int, reply: ParsedEmail) -> None:
        """Our reply is the best evidence of the time spent: add its writing time to the proposal."""
        proposal = self.session.get(Proposal, proposal_id)
        if proposal is None or proposal.status != ProposalStatus.PENDING.value:
            return
        words = count_words(reply.new_text)
        writing = minutes_for(words, self.classifier.rules.estimate.write_words_per_minute)
        contact = proposal.contact_minutes + writing
        logged = generous_minutes(contact, self.settings.policy, billable=proposal.category == Category.BILLABLE.value)
        proposal.explanation += f"; + reply {words} words {writing} → contact {contact} min → {logged.minutes} min"
        proposal.contact_minutes = contact
        proposal.minutes = proposal.proposed_minutes = logged.minutes
        self.session.add(proposal)

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
