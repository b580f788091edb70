"""Proposals: minutes waiting for a staff decision, from any source (mail, tickets, calls)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from ledger import audit
from ledger.clients import normalise_address
from ledger.errors import AlreadyDecidedError, AlreadyExistsError, InvalidInputError, NotFoundError
from ledger.models import Category, Channel, Client, ClientEmail, Project, Proposal, ProposalStatus, SourceItem
from ledger.policy import generous_minutes
from psp.config import Policy

MANUAL_RULE = "manual"


def pending_values(
    source_item_id: int,
    client_id: int | None,
    *,
    category: Category,
    contact_minutes: int,
    minutes: int,
    rule: str,
    explanation: str,
    project_id: int | None = None,
) -> dict[str, Any]:
    """A pending proposal as the columns of its row: intake inserts thousands at once, without
    building an ORM object for each."""
    return {
        "source_item_id": source_item_id,
        "client_id": client_id,
        "status": ProposalStatus.PENDING.value,
        "category": category.value,
        "minutes": minutes,
        "proposed_category": category.value,
        "proposed_minutes": minutes,
        "contact_minutes": contact_minutes,
        "rule": rule,
        "explanation": explanation,
        "project_id": project_id,
    }


def with_more_contact(category: str, contact_minutes: int, more: int, policy: Policy) -> dict[str, int]:
    """A pending proposal's minutes once `more` minutes of contact time count (our reply's writing,
    staff time recorded on a ticket): the generous rule applied to the new total."""
    contact = contact_minutes + more
    logged = generous_minutes(contact, policy, billable=category == Category.BILLABLE.value)
    return {"contact_minutes": contact, "minutes": logged.minutes, "proposed_minutes": logged.minutes}


def propose(
    session: Session,
    item: SourceItem,
    *,
    category: Category,
    contact_minutes: int,
    minutes: int,
    rule: str,
    explanation: str,
    project_id: int | None = None,
) -> Proposal:
    """Record a pending proposal for a stored source item."""
    assert item.id is not None
    proposal = Proposal(
        **pending_values(
            item.id,
            item.client_id,
            category=category,
            contact_minutes=contact_minutes,
            minutes=minutes,
            rule=rule,
            explanation=explanation,
            project_id=project_id,
        )
    )
    session.add(proposal)
    session.flush()
    return proposal


def log_contact(
    session: Session,
    actor: str,
    client: Client,
    policy: Policy,
    *,
    contact_minutes: int,
    channel: Channel,
    subject: str,
    category: Category,
    project_id: int | None,
    occurred_at: datetime,
) -> Proposal:
    """Hand-logged phone, Skype or on-site time: taken as contact time, then the generous rule."""
    if contact_minutes <= 0:
        raise InvalidInputError(f"minutes must be a positive whole number, got {contact_minutes}")
    if not subject.strip():
        raise InvalidInputError("a logged contact needs a subject")
    if category is Category.IGNORED:
        raise InvalidInputError("a logged contact cannot be ignored: it was time spent with the client")
    if category is Category.PROJECT_PREP and project_id is None:
        raise InvalidInputError("project prep needs --project (see `psp project list`)")
    if project_id is not None:
        project = session.get(Project, project_id)
        if project is None or project.client_id != client.id:
            raise NotFoundError(f"client {client.slug!r} has no project {project_id}")
    key = f"manual:{uuid.uuid4()}"
    item = SourceItem(
        client_id=client.id,
        channel=channel.value,
        subject=subject.strip(),
        sender=actor,
        occurred_at=occurred_at,
        thread_key=key,
        source_key=key,
    )
    session.add(item)
    session.flush()
    decision = generous_minutes(contact_minutes, policy, billable=category is Category.BILLABLE)
    proposal = propose(
        session,
        item,
        category=category,
        contact_minutes=contact_minutes,
        minutes=decision.minutes,
        rule=MANUAL_RULE,
        explanation=f"rule {MANUAL_RULE}: {channel.value} logged by {actor}; {decision.reason}",
        project_id=project_id,
    )
    audit.record(
        session,
        actor,
        "contact.log",
        f"proposal:{proposal.id}",
        client=client.slug,
        channel=channel.value,
        contact_minutes=contact_minutes,
        category=category.value,
    )
    return proposal


@dataclass(frozen=True)
class ProposalRow:
    """A proposal as listed for review, with what it is about."""

    id: int
    client: str | None
    status: str
    category: str
    minutes: int
    contact_minutes: int
    channel: str
    subject: str
    rule: str
    explanation: str
    project: int | None
    occurred_at: datetime
    decided_by: str | None


def list_proposals(
    session: Session, status: ProposalStatus | None = None, client: Client | None = None
) -> list[ProposalRow]:
    """Proposals with their item and client, oldest first, in one query."""
    query = (
        select(Proposal, SourceItem, Client.slug)
        .join(SourceItem, col(SourceItem.id) == Proposal.source_item_id)
        .join(Client, col(Client.id) == Proposal.client_id, isouter=True)
        .order_by(col(SourceItem.occurred_at), col(Proposal.id))
    )
    if status is not None:
        query = query.where(Proposal.status == status.value)
    if client is not None:
        query = query.where(Proposal.client_id == client.id)
    return [
        ProposalRow(
            id=p.id or 0,
            client=slug,
            status=p.status,
            category=p.category,
            minutes=p.minutes,
            contact_minutes=p.contact_minutes,
            channel=item.channel,
            subject=item.subject,
            rule=p.rule,
            explanation=p.explanation,
            project=p.project_id,
            occurred_at=item.occurred_at,
            decided_by=p.decided_by,
        )
        for p, item, slug in session.exec(query).all()
    ]


def assign_client(session: Session, actor: str, proposal_id: int, client: Client, *, remember: bool) -> Proposal:
    """Attach an unmatched (or unverified) item to a client; `remember` teaches its sender address.

    Only the item's own proposal changes; a decided proposal keeps its client, as its entry does.
    """
    proposal = session.get(Proposal, proposal_id)
    if proposal is None:
        raise NotFoundError(f"no proposal {proposal_id}")
    if proposal.status != ProposalStatus.PENDING.value:
        raise AlreadyDecidedError(f"proposal {proposal_id} is already {proposal.status}: its client cannot change")
    item = session.get(SourceItem, proposal.source_item_id)
    assert item is not None
    proposal.client_id = item.client_id = client.id
    session.add_all([proposal, item])
    learned = None
    if remember and item.sender:
        learned = normalise_address(item.sender)
        owner = session.exec(select(ClientEmail).where(ClientEmail.address == learned)).first()
        if owner is not None and owner.client_id != client.id:
            raise AlreadyExistsError(f"address {learned} already belongs to another client")
        if owner is None:
            assert client.id is not None
            session.add(ClientEmail(client_id=client.id, address=learned))
    audit.record(
        session, actor, "proposal.assign", f"proposal:{proposal_id}", client=client.slug, learned_address=learned
    )
    return proposal


def thread_states(session: Session, threads: set[str]) -> tuple[dict[str, str], dict[str, int]]:
    """For each known thread (a mail thread, a ticket): the category of its first proposal, which
    its later items follow, and its latest pending proposal, which our replies' time joins."""
    categories: dict[str, str] = {}
    pending: dict[str, int] = {}
    if not threads:
        return categories, pending
    rows = session.exec(
        select(SourceItem.thread_key, Proposal.id, Proposal.proposed_category, Proposal.status)
        .join(Proposal, col(Proposal.source_item_id) == SourceItem.id)
        .where(col(SourceItem.thread_key).in_(threads))
        .order_by(col(SourceItem.occurred_at), col(Proposal.id))
    ).all()
    for thread, proposal_id, category, status in rows:
        categories.setdefault(thread, category)
        if status == ProposalStatus.PENDING.value and proposal_id is not None:
            pending[thread] = proposal_id
    return categories, pending
