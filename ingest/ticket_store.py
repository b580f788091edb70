"""Storing helpdesk ticket entries: each once, attributed by requestor, classified, proposed.

A ticket is a support request: all its entries share one thread, so the non-plan minimum applies
per ticket. The ticket's client is its first requestor that is a client's address or domain (as
for a mail sender); with none, the entries wait for staff as unmatched. An entry written by our
staff is our reply: the time recorded on it (RT's TimeTaken) goes to the ticket's pending
proposal, as a staff mail's writing time does; if the ticket has none pending, the staff time
becomes a proposal of its own, so recorded time is never dropped. Any other entry is the
client's, judged by the rules with the recorded time as its contact time (or, with none
recorded, the time estimated from its words), then the generous rule.

The caller owns the transaction; a batch is written in a few flushes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType

from sqlmodel import Session, col, select

from classify.engine import Decision, classify
from classify.facts import ItemFacts
from classify.service import Classifier, World, load_world
from ingest.attribution import AttributionKind, attribute
from ingest.quoting import new_text
from ingest.rows import Row, insert_rows
from ingest.store import EXCERPT_CHARS, text_column
from ingest.summary import IntakeSummary
from ingest.ticket_models import TicketEntry
from ledger.models import Category, Channel, Proposal, ProposalStatus, SourceItem
from ledger.posting import approve
from ledger.proposals import pending_values, thread_states, with_more_contact
from psp.config import Settings

STAFF, CLIENT, UNKNOWN = "staff", "client", "unknown"
SYSTEM_CHARS = 190  # so "ticket:<system>:<ticket>" fits the 300 characters of a thread key


@dataclass(frozen=True)
class TicketMessage:
    """One entry of a ticket, from any helpdesk, as plain values.

    Attributes:
      system: the helpdesk (an RT URL, or an import's system name), at most SYSTEM_CHARS long.
      ticket, entry: the ticket's id and the entry's id within the system (at most 100 characters).
      kind: create, correspond, comment, or row (an import).
      author: the writer's address; requestors: the ticket's requestor addresses, in order.
      time_taken: minutes the helpdesk recorded; None when none were (then they are estimated).
      noise: why the entry is automated mail (an auto-reply that reached the helpdesk), or None.
    """

    system: str
    ticket: str
    entry: str
    kind: str
    subject: str
    text: str
    author: str
    requestors: tuple[str, ...]
    occurred_at: datetime
    time_taken: int | None = None
    queue: str = ""
    custom_fields: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    headers: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    attachments: int = 0
    noise: str | None = None

    @property
    def thread(self) -> str:
        return f"ticket:{self.system}:{self.ticket}"

    @property
    def source_key(self) -> str:
        """Unique across systems however long their names: the readable identity is in ticket_entry."""
        return "ticket:" + hashlib.sha256(f"{self.system}\n{self.ticket}\n{self.entry}".encode()).hexdigest()

    def content_hash(self) -> str:
        fields = [self.kind, self.author, str(self.time_taken), self.occurred_at.isoformat(), self.subject, self.text]
        return hashlib.sha256("\n".join(fields).encode()).hexdigest()


@dataclass
class _Planned:
    """What storing one new entry comes to, decided before anything is written."""

    message: TicketMessage
    client_id: int | None
    author_kind: str
    sender: str | None
    text: str
    decision: Decision | None = None
    proposal: Row | None = None  # the pending proposal's row, until written
    staff_minutes: int = 0  # recorded staff time for the ticket's pending proposal
    answers: _Planned | None = None  # …written in this batch
    answers_id: int | None = None  # …or already stored


def known_entries(session: Session, system: str, tickets: Sequence[str]) -> set[tuple[str, str]]:
    """(ticket, entry) pairs of these tickets already stored: a sync need not fetch them again."""
    if not tickets:
        return set()
    rows = session.exec(
        select(TicketEntry.ticket, TicketEntry.entry).where(
            TicketEntry.system == system, col(TicketEntry.ticket).in_(tickets)
        )
    ).all()
    return set(rows)


class TicketStore:
    """Stores batches of ticket entries; the caller owns the transaction."""

    def __init__(self, session: Session, settings: Settings, classifier: Classifier | None = None) -> None:
        self.session = session
        self.settings = settings
        self.classifier = classifier or Classifier.from_settings(settings)
        self.world: World = load_world(session, settings)
        self.directory = replace(self.world.directory, trusted_authserv_id=None)

    def store(self, messages: Sequence[TicketMessage]) -> IntakeSummary:
        """Store the new entries of a batch (in order) and count the rest as duplicates."""
        summary = IntakeSummary(read=len(messages))
        known: set[tuple[str, str, str]] = set()
        for system in {m.system for m in messages}:
            tickets = sorted({m.ticket for m in messages if m.system == system})
            known.update((system, t, e) for t, e in known_entries(self.session, system, tickets))
        new: list[TicketMessage] = []
        for message in messages:
            key = (message.system, message.ticket, message.entry)
            if key in known:
                summary.duplicate += 1
            else:
                known.add(key)
                new.append(message)
        planned = self._plan(new)
        self._write(planned)
        for step in planned:
            if step.decision is None and step.author_kind != STAFF:
                summary.ignored += 1
            else:
                summary.stored += 1
        return summary

    def _client(self, requestors: tuple[str, ...]) -> int | None:
        """The ticket's client: its first requestor whose address or domain is a client's."""
        for address in requestors:
            who = attribute(address, (), self.directory)
            if who.kind in (AttributionKind.ADDRESS, AttributionKind.DOMAIN):
                return who.client_id
        return None

    def _plan(self, messages: Sequence[TicketMessage]) -> list[_Planned]:
        categories, pending = thread_states(self.session, {m.thread for m in messages})
        latest: dict[str, _Planned] = {}  # ticket → the newest planned entry with a proposal
        steps = []
        for message in messages:
            client_id = self._client(message.requestors)
            is_staff = attribute(message.author, (), self.directory).kind is AttributionKind.STAFF
            kind = STAFF if is_staff else (CLIENT if client_id is not None else UNKNOWN)
            own = message.author if message.author in message.requestors else None
            sender = message.author if is_staff else own or next(iter(message.requestors), None) or message.author
            step = _Planned(message, client_id, kind, sender or None, new_text(message.text))
            thread = message.thread
            if is_staff:
                recorded = message.time_taken or 0
                answers = latest.get(thread)
                answers_id = pending.get(thread) if answers is None else None
                if recorded > 0 and (answers is not None or answers_id is not None):
                    step.staff_minutes, step.answers, step.answers_id = recorded, answers, answers_id
                elif recorded > 0:
                    step.decision = self._decide(step, categories.get(thread))
            else:
                step.decision = self._decide(step, categories.get(thread))
            if step.decision is not None and step.decision.category is Category.IGNORED:
                step.decision = None
            elif step.decision is not None:
                categories.setdefault(thread, step.decision.category.value)
                latest[thread] = step
            steps.append(step)
        return steps

    def _decide(self, step: _Planned, thread_category: str | None) -> Decision:
        message = step.message
        plan = self.world.plans.get(step.client_id) if step.client_id else None
        facts = ItemFacts(
            channel=Channel.TICKET.value,
            folder=message.queue,
            sender=step.author_kind,
            plan=plan,
            subject=message.subject,
            new_text=step.text,
            text=message.text,
            headers=message.headers,
            attachments=message.attachments,
            noise=message.noise,
            thread_category=thread_category,
            projects=self.world.projects.get(step.client_id, ()) if step.client_id else (),
            given_minutes=message.time_taken or None,
            queue=message.queue,
            custom_fields=message.custom_fields,
        )
        classifier = self.classifier
        return classify(
            facts, classifier.rules, classifier.context, classifier.policy, auto_approvable=classifier.auto_approvable
        )

    def _write(self, steps: list[_Planned]) -> None:
        """Items, then entries and proposals (the staff time added first): one executemany per table."""
        items = insert_rows(self.session, SourceItem, [self._item(step) for step in steps])
        insert_rows(self.session, TicketEntry, [self._entry(s, i["id"]) for s, i in zip(steps, items, strict=True)])
        for step, item in zip(steps, items, strict=True):
            if step.decision is not None:
                step.proposal = pending_values(
                    item["id"],
                    item["client_id"],
                    category=step.decision.category,
                    contact_minutes=step.decision.contact_minutes,
                    minutes=step.decision.minutes,
                    rule=step.decision.rule,
                    explanation=step.decision.explanation,
                    project_id=step.decision.project_id,
                )
        self._add_staff_time([s for s in steps if s.staff_minutes])
        insert_rows(self.session, Proposal, [s.proposal for s in steps if s.proposal is not None])
        for step, item in zip(steps, items, strict=True):
            decision, written = step.decision, step.proposal
            if decision and decision.auto_approve and written is not None and item["client_id"] is not None:
                approve(self.session, f"rule:{decision.rule}", written["id"], self.settings.policy)

    def _add_staff_time(self, replies: list[_Planned]) -> None:
        """The time our staff recorded on a ticket goes to the pending proposal of the request
        (about to be written in this batch, or already stored)."""
        ids = [r.answers_id for r in replies if r.answers_id is not None]
        stored = {p.id: p for p in self.session.exec(select(Proposal).where(col(Proposal.id).in_(ids)))} if ids else {}
        policy = self.settings.policy
        for reply in replies:
            message = reply.message
            note = f"; + {message.kind} by {message.author} recorded {reply.staff_minutes} min"
            if reply.answers is not None and reply.answers.proposal is not None:
                row = reply.answers.proposal
                row.update(with_more_contact(row["category"], row["contact_minutes"], reply.staff_minutes, policy))
                row["explanation"] += f"{note} → contact {row['contact_minutes']} min → {row['minutes']} min"
            elif (proposal := stored.get(reply.answers_id)) is not None and proposal.status == ProposalStatus.PENDING:
                minutes = with_more_contact(proposal.category, proposal.contact_minutes, reply.staff_minutes, policy)
                explanation = f"{note} → contact {minutes['contact_minutes']} min → {minutes['minutes']} min"
                proposal.sqlmodel_update({**minutes, "explanation": proposal.explanation + explanation})
                self.session.add(proposal)

    @staticmethod
    def _item(step: _Planned) -> Row:
        message = step.message
        return {
            "client_id": step.client_id,
            "channel": Channel.TICKET.value,
            "subject": text_column(message.subject)[:998] or f"(ticket {message.ticket}, no subject)",
            "excerpt": text_column(step.text)[:EXCERPT_CHARS],
            "sender": step.sender[:320] if step.sender else None,
            "occurred_at": message.occurred_at,
            "thread_key": message.thread,
            "source_key": message.source_key,
        }

    @staticmethod
    def _entry(step: _Planned, item_id: int) -> Row:
        message = step.message
        return {
            "source_item_id": item_id,
            "system": message.system,
            "ticket": message.ticket,
            "entry": message.entry,
            "kind": message.kind,
            "author": message.author[:320] or None,
            "author_kind": step.author_kind,
            "time_taken": message.time_taken,
            "queue": message.queue[:200],
            "custom_fields": json.dumps({k: list(v) for k, v in message.custom_fields.items()}, ensure_ascii=False),
            "content_hash": message.content_hash(),
        }
