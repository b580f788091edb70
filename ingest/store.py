"""Storing a batch of raw messages: each once, threaded, attributed, or quarantined.

One batch is one transaction, so a batch and the mailbox state that covers it land together.
The batch is planned first and written with one executemany per table; if the database refuses
any of it, the batch is written again a message at a time, each in a savepoint, so only the
message that cannot be stored is quarantined with the reason and the rest goes on. Lookups are
made per batch, not per message: known content hashes, known locations, referenced Message-IDs,
subjects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from classify.engine import Decision
from classify.estimate import count_words, minutes_for
from classify.service import Classifier, load_world
from ingest.attribution import Attribution, AttributionKind, Directory, attribute, counterpart
from ingest.errors import NotAnEmail
from ingest.files import RawMessage
from ingest.models import MailLocation, MailMessage, QuarantinedMessage
from ingest.noise import noise_reason
from ingest.packing import pack
from ingest.parsing import ParsedEmail, content_hash
from ingest.prepared import Prepared, prepare
from ingest.rows import Row, insert_rows
from ingest.summary import IntakeSummary
from ingest.threads import new_thread_key, subject_key, thread_by_headers
from ledger.models import Category, Channel, Proposal, ProposalStatus, SourceItem
from ledger.posting import approve
from ledger.proposals import pending_values, thread_states, with_more_contact
from psp.config import Settings

EXCERPT_CHARS = 2000


def text_column(value: str) -> str:
    """NUL is valid in mail and tickets but not in a PostgreSQL text column; the raw message keeps it."""
    return value.replace("\x00", "")


@dataclass(frozen=True)
class _Incoming:
    """A parsed message with what the pure steps decided about it before any storage."""

    message: RawMessage
    parsed: ParsedEmail
    packed: bytes
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
    planned: set[str] = field(default_factory=set)  # content hashes of new messages in this batch


@dataclass
class _Step:
    """What storing one message comes to, decided before anything is written.

    Attributes:
      outcome: stored, ignored or duplicate (the summary's words).
      new_location: for a duplicate, whether this place is new (its location row is written).
      decision: the proposal to make, if any.
      reply_words: for our own reply, the words whose writing time goes to the thread's proposal.
    """

    incoming: _Incoming
    outcome: str
    new_location: bool = True
    thread: str = ""
    when: datetime = datetime.min
    decision: Decision | None = None
    proposal: Row | None = None
    reply_words: int = 0
    answers: _Step | None = None  # our reply: the step in this batch whose proposal it answers
    answers_id: int | None = None  # …or the stored pending proposal it answers


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
        return self.store_prepared(messages, [prepare(m.raw) for m in messages])

    def store_prepared(self, messages: Sequence[RawMessage], prepared: Sequence[Prepared]) -> IntakeSummary:
        """Store a batch whose messages were prepared already (perhaps in other processes)."""
        summary = IntakeSummary(read=len(messages))
        incoming: list[_Incoming | tuple[RawMessage, NotAnEmail]] = []
        for message, ready in zip(messages, prepared, strict=True):
            result = ready.parsed
            if isinstance(result, NotAnEmail):
                incoming.append((message, result))
                continue
            who = attribute(result.sender, result.auth_results, self.directory)
            key = subject_key(result.subject, _participant(result, who, self.directory))
            incoming.append(_Incoming(message, result, ready.packed, who, key, noise_reason(result)))
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
        good = [i for i in incoming if isinstance(i, _Incoming)]
        try:
            with self.session.begin_nested():  # the whole batch, one INSERT per table
                outcomes = self._write(self._plan(good, index), index)
        except SQLAlchemyError:
            # Something in the batch was refused: redo it a message at a time, so only the
            # message the database refuses ends in quarantine.
            quarantined = index.quarantined
            index = self._index(messages, good)
            index.quarantined = quarantined
            outcomes = [self._store_one(i, index) for i in good]
        for incoming_item, outcome in zip(good, outcomes, strict=True):
            if outcome.startswith("quarantine:"):
                self._quarantine(incoming_item.message, outcome.removeprefix("quarantine:"), index, summary)
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
        # By the whole unique key: with the UIDVALIDITY left out, the database would read every
        # location of the folder for each batch, and a poll would slow down as the folder grows.
        places: dict[tuple[str, str, int], list[str]] = {}
        for m in messages:
            places.setdefault((m.location.source, m.location.folder, m.location.uidvalidity), []).append(m.location.uid)
        for (source, folder, uidvalidity), uids in places.items():
            seen = self.session.exec(
                select(MailLocation.uid).where(
                    MailLocation.source == source,
                    MailLocation.folder == folder,
                    MailLocation.uidvalidity == uidvalidity,
                    col(MailLocation.uid).in_(uids),
                )
            ).all()
            index.locations.update((source, folder, uidvalidity, uid) for uid in seen)
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
        threads = set(index.threads_by_message_id.values()) | {t for t, _ in index.threads_by_subject.values()}
        index.thread_categories, index.pending_by_thread = thread_states(self.session, threads)

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
        """The careful path: one message in a savepoint of its own."""
        try:
            with self.session.begin_nested():
                [outcome] = self._write(self._plan([incoming], index), index)
                return outcome
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            return f"quarantine:could not be stored: {reason}"

    def _plan(self, batch: Sequence[_Incoming], index: _BatchIndex) -> list[_Step]:
        """Decide each message in order — duplicate or new, thread, category — without writing.

        Later messages see the earlier ones' threads and categories through the index.
        """
        steps: list[_Step] = []
        latest_planned: dict[str, _Step] = {}  # thread → the newest step in this batch with a proposal
        for incoming in batch:
            parsed, location = incoming.parsed, incoming.message.location
            place = (location.source, location.folder, location.uidvalidity, location.uid)
            if parsed.content_hash in index.hashes or parsed.content_hash in index.planned:
                steps.append(_Step(incoming, "duplicate", new_location=place not in index.locations))
                index.locations.add(place)
                continue
            when = parsed.date or datetime.now(UTC)
            thread = self._thread(incoming, when, index)
            step = _Step(incoming, "stored", thread=thread, when=when)
            if incoming.who.kind is AttributionKind.STAFF:
                if incoming.noise is None:
                    # Our reply answers the request pending at that point of the thread.
                    step.reply_words = count_words(parsed.new_text)
                    step.answers = latest_planned.get(thread)
                    step.answers_id = index.pending_by_thread.get(thread) if step.answers is None else None
                step.outcome = "ignored" if incoming.noise else "stored"
            else:
                decision = self.classifier.mail(
                    parsed,
                    incoming.who,
                    self.world,
                    noise=incoming.noise,
                    thread_category=index.thread_categories.get(thread),
                    folder=location.folder,
                )
                if decision.category is Category.IGNORED:
                    step.outcome = "ignored"
                else:
                    step.decision = decision
                    latest_planned[thread] = step
                    index.thread_categories.setdefault(thread, decision.category.value)
            index.planned.add(parsed.content_hash)
            index.locations.add(place)
            index.threads_by_message_id[parsed.message_id] = thread
            latest = index.threads_by_subject.get(incoming.subject_key)
            if latest is None or latest[1] <= when:
                index.threads_by_subject[incoming.subject_key] = (thread, when)
            steps.append(step)
        return steps

    def _write(self, steps: list[_Step], index: _BatchIndex) -> list[str]:
        """Carry the plan out: items, then proposals and messages, then locations.

        Rows go in as one executemany per table through SQLAlchemy Core; the ORM would build,
        validate and track an object per row, which cost more than the inserts themselves.
        """
        new = [s for s in steps if s.outcome != "duplicate"]
        items = insert_rows(self.session, SourceItem, [self._source_item(s) for s in new])
        proposals: dict[str, Row] = {}  # by thread: the latest pending proposal written now
        for step, item in zip(new, items, strict=True):
            if step.decision is not None:
                step.proposal = proposals[step.thread] = self._proposal(step.decision, item)
        self._apply_reply_time([s for s in new if s.reply_words])
        insert_rows(self.session, Proposal, [s.proposal for s in new if s.proposal is not None])
        messages = insert_rows(
            self.session, MailMessage, [self._mail_message(s, i["id"]) for s, i in zip(new, items, strict=True)]
        )
        stored = {m["content_hash"]: m["id"] for m in messages}
        insert_rows(
            self.session,
            MailLocation,
            [
                {"mail_message_id": stored.get(digest) or index.hashes[digest], **asdict(s.incoming.message.location)}
                for s in steps
                if s.outcome != "duplicate" or s.new_location
                for digest in [s.incoming.parsed.content_hash]
            ],
            with_ids=False,
        )
        index.hashes.update(stored)
        for thread, proposal in proposals.items():
            index.pending_by_thread[thread] = proposal["id"]
        for step, item in zip(new, items, strict=True):
            decision, written = step.decision, step.proposal
            if decision and decision.auto_approve and written is not None and item["client_id"] is not None:
                approve(self.session, f"rule:{decision.rule}", written["id"], self.settings.policy)
        return [s.outcome for s in steps]

    @staticmethod
    def _source_item(step: _Step) -> Row:
        parsed, who = step.incoming.parsed, step.incoming.who
        return {
            "client_id": who.client_id,
            "channel": Channel.EMAIL.value,
            "subject": text_column(parsed.subject)[:998] or "(no subject)",
            "excerpt": text_column(parsed.new_text)[:EXCERPT_CHARS],
            "sender": parsed.sender,
            "occurred_at": step.when,
            "thread_key": step.thread,
            "source_key": f"mail:{parsed.content_hash}",
        }

    @staticmethod
    def _mail_message(step: _Step, item_id: int) -> Row:
        incoming, parsed = step.incoming, step.incoming.parsed
        return {
            "source_item_id": item_id,
            "content_hash": parsed.content_hash,
            "message_id": parsed.message_id[:998],
            "in_reply_to": " ".join(parsed.in_reply_to),
            "references": " ".join(parsed.references),
            "sender": parsed.sender,
            "recipients": " ".join(parsed.recipients),
            "direction": "out" if incoming.who.kind is AttributionKind.STAFF else "in",
            "attribution": incoming.who.kind.value,
            "noise": incoming.noise,
            "subject_key": incoming.subject_key,
            "size": parsed.size,
            "raw": incoming.packed,
        }

    @staticmethod
    def _proposal(decision: Decision, item: Row) -> Row:
        return pending_values(
            item["id"],
            item["client_id"],
            category=decision.category,
            contact_minutes=decision.contact_minutes,
            minutes=decision.minutes,
            rule=decision.rule,
            explanation=decision.explanation,
            project_id=decision.project_id,
        )

    def _apply_reply_time(self, replies: list[_Step]) -> None:
        """Our replies are the best evidence of the time spent: add their writing time to the
        pending proposal each one answers (about to be written in this batch, or already stored)."""
        ids = [r.answers_id for r in replies if r.answers_id is not None]
        query = select(Proposal).where(col(Proposal.id).in_(ids))
        stored = {p.id: p for p in self.session.exec(query).all()} if ids else {}
        for reply in replies:
            if reply.answers is not None and reply.answers.proposal is not None:
                row = reply.answers.proposal
                minutes, note = self._with_reply(reply.reply_words, row["category"], row["contact_minutes"])
                row.update(minutes, explanation=row["explanation"] + note)
            elif (proposal := stored.get(reply.answers_id)) is not None and proposal.status == ProposalStatus.PENDING:
                minutes, note = self._with_reply(reply.reply_words, proposal.category, proposal.contact_minutes)
                proposal.sqlmodel_update({**minutes, "explanation": proposal.explanation + note})
                self.session.add(proposal)

    def _with_reply(self, words: int, category: str, contact_minutes: int) -> tuple[dict[str, int], str]:
        """A proposal's minutes once a reply of `words` words is counted, and what to add to its explanation."""
        writing = minutes_for(words, self.classifier.rules.estimate.write_words_per_minute)
        minutes = with_more_contact(category, contact_minutes, writing, self.settings.policy)
        return minutes, (
            f"; + reply {words} words {writing} → contact {minutes['contact_minutes']} min → {minutes['minutes']} min"
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
                raw=pack(message.raw),
            )
        )
        summary.quarantined += 1
