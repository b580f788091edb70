"""Posting to the append-only ledger: approvals, rejections, reversals, blocks.

Every function takes the caller's session and never commits: the command (or web request) that
calls it owns the transaction, so a multi-row posting lands whole or not at all.

Exactly-once has two locks. Deciding a proposal is a conditional UPDATE (`WHERE status =
'pending' AND revision = n`): of two staff approving at once, the second waits for the first's
row lock, then matches nothing and is told the proposal is decided. Behind it, every entry
carries an idempotency key with a unique constraint, inserted with ON CONFLICT DO NOTHING: the
same key with the same payload is the same entry, with a different payload an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from ledger import audit
from ledger.errors import (
    AlreadyDecidedError,
    AlreadyReversedError,
    IdempotencyConflictError,
    InvalidInputError,
    NotFoundError,
)
from ledger.models import (
    Block,
    Category,
    Client,
    EntryKind,
    LedgerEntry,
    Plan,
    Project,
    ProjectStatus,
    Proposal,
    ProposalStatus,
    SourceItem,
    utcnow,
)
from ledger.policy import ChargeDecision, ChargeStatus, RequestHistory, charge_for
from psp.config import Policy

SUBJECT_MAX = 998
# What must match for a repeated key to be "the same entry".
_PAYLOAD = ("client_id", "kind", "minutes", "proposal_id", "block_id", "reverses_id")


def post_entry(session: Session, draft: LedgerEntry) -> LedgerEntry:
    """Insert `draft` once per idempotency key and return the stored entry."""
    values = draft.model_dump(exclude={"id"})
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(LedgerEntry)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(col(LedgerEntry.id))
    )
    new_id = session.execute(statement).scalar_one_or_none()
    if new_id is not None:
        entry = session.get(LedgerEntry, new_id)
        assert entry is not None
        return entry
    existing = session.exec(select(LedgerEntry).where(LedgerEntry.idempotency_key == draft.idempotency_key)).one()
    differences = [f for f in _PAYLOAD if getattr(existing, f) != getattr(draft, f)]
    if differences:
        raise IdempotencyConflictError(
            f"key {draft.idempotency_key!r} is already entry {existing.id} "
            f"({existing.minutes} min), which differs in {', '.join(differences)}"
        )
    return existing


def local_date(moment: datetime, policy: Policy) -> date:
    """The consultancy's calendar date of a UTC moment: reports are kept in local days."""
    return moment.astimezone(policy.zone).date()


def buy_block(
    session: Session, actor: str, client: Client, policy: Policy, *, minutes: int, ref: str | None, on: date
) -> tuple[Block, LedgerEntry]:
    """Credit a purchased block. Buying one puts a client without a plan on the plan."""
    if minutes <= 0:
        raise InvalidInputError(f"block minutes must be a positive whole number, got {minutes}")
    assert client.id is not None
    block = Block(client_id=client.id, minutes=minutes, ref=ref, purchased_on=on)
    session.add(block)
    if client.plan != Plan.PSP.value:
        client.plan = Plan.PSP.value
        session.add(client)
        audit.record(session, actor, "client.plan", f"client:{client.id}", plan=Plan.PSP.value, cause="block")
    session.flush()
    label = f"PSP block purchased ({minutes} min)" + (f", ref {ref}" if ref else "")
    entry = post_entry(
        session,
        LedgerEntry(
            client_id=client.id,
            effective_on=on,
            kind=EntryKind.BLOCK.value,
            minutes=minutes,
            subject=label,
            block_id=block.id,
            idempotency_key=f"block:{block.id}",
            reason=f"block credit: {minutes} min",
            actor=actor,
        ),
    )
    audit.record(session, actor, "block.add", f"block:{block.id}", client=client.slug, minutes=minutes, ref=ref)
    return block, entry


def request_history(session: Session, client_id: int, request_key: str) -> RequestHistory:
    """What a request has posted so far, leaving out entries that were reversed."""
    reversed_ids = select(LedgerEntry.reverses_id).where(col(LedgerEntry.reverses_id).is_not(None))
    logged, charged = session.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(LedgerEntry.logged_minutes), 0),
            sa.func.coalesce(sa.func.sum(-col(LedgerEntry.minutes)), 0),
        ).where(
            col(LedgerEntry.client_id) == client_id,
            col(LedgerEntry.request_key) == request_key,
            col(LedgerEntry.kind) == EntryKind.CHARGE.value,
            col(LedgerEntry.id).not_in(reversed_ids),
        )
    ).one()
    return RequestHistory(logged_minutes=int(logged), charged_minutes=int(charged))


def posting_key(proposal: Proposal) -> str:
    return f"proposal:{proposal.id}" if proposal.revision == 0 else f"proposal:{proposal.id}/{proposal.revision}"


def request_key(proposal: Proposal, source: SourceItem) -> str:
    """Project prep counts as one request per project; anything else belongs to its thread."""
    if proposal.category == Category.PROJECT_PREP.value:
        return f"project:{proposal.project_id}"
    return source.thread_key


@dataclass(frozen=True)
class PostingContext:
    """The facts a proposal's posting depends on, gathered by the caller."""

    client: Client
    source: SourceItem
    project: Project | None


def _post_proposal(
    session: Session, actor: str, proposal: Proposal, facts: PostingContext, policy: Policy, history: RequestHistory
) -> tuple[ChargeDecision, LedgerEntry | None]:
    """Post an approved proposal as the policy says, or hold it while its project is undecided."""
    project_status = ProjectStatus(facts.project.status) if facts.project else None
    decision = charge_for(
        Category(proposal.category),
        proposal.minutes,
        Plan(facts.client.plan),
        policy,
        project_status=project_status,
        history=history,
    )
    if decision.status is ChargeStatus.HELD:
        return decision, None
    if facts.project is not None and project_status is ProjectStatus.DECLINED and facts.project.decided_on:
        effective_on = facts.project.decided_on  # declined prep is charged on the day of the decision
    else:
        effective_on = local_date(facts.source.occurred_at, policy)
    assert facts.client.id is not None
    entry = post_entry(
        session,
        LedgerEntry(
            client_id=facts.client.id,
            effective_on=effective_on,
            kind=EntryKind.CHARGE.value,
            category=proposal.category,
            minutes=-decision.minutes,
            logged_minutes=proposal.minutes if decision.status is ChargeStatus.CHARGED else 0,
            channel=facts.source.channel,
            subject=facts.source.subject[:SUBJECT_MAX],
            request_key=request_key(proposal, facts.source),
            proposal_id=proposal.id,
            project_id=proposal.project_id,
            source_item_id=facts.source.id,
            idempotency_key=posting_key(proposal),
            reason=decision.reason,
            actor=actor,
        ),
    )
    return decision, entry


def _load_pending(session: Session, proposal_id: int) -> Proposal:
    proposal = session.get(Proposal, proposal_id, populate_existing=True)  # fresh: decisions race
    if proposal is None:
        raise NotFoundError(f"no proposal {proposal_id}")
    if proposal.status != ProposalStatus.PENDING.value:
        raise AlreadyDecidedError(f"proposal {proposal_id} is already {proposal.status} (by {proposal.decided_by})")
    return proposal


def _claim(session: Session, proposal: Proposal, status: ProposalStatus, actor: str, **values: object) -> None:
    """Move a pending proposal to `status`, or fail if someone decided it first."""
    result = session.execute(
        sa.update(Proposal)
        .where(
            col(Proposal.id) == proposal.id,
            col(Proposal.status) == ProposalStatus.PENDING.value,
            col(Proposal.revision) == proposal.revision,
        )
        .values(status=status.value, decided_by=actor, decided_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.expire(proposal)
        raise AlreadyDecidedError(f"proposal {proposal.id} was decided by someone else meanwhile")
    session.refresh(proposal)


def _project_of(session: Session, project_id: int | None, client_id: int) -> Project | None:
    if project_id is None:
        return None
    project = session.get(Project, project_id)
    if project is None:
        raise NotFoundError(f"no project {project_id}")
    if project.client_id != client_id:
        raise InvalidInputError(f"project {project_id} belongs to another client")
    return project


@dataclass(frozen=True)
class Approval:
    """The outcome of approving one proposal: the entry (none while held) and why."""

    proposal: Proposal
    entry: LedgerEntry | None
    decision: ChargeDecision


def approve(
    session: Session,
    actor: str,
    proposal_id: int,
    policy: Policy,
    *,
    minutes: int | None = None,
    category: Category | None = None,
    project_id: int | None = None,
    note: str | None = None,
) -> Approval:
    """Approve a pending proposal, optionally with other minutes, category or project."""
    proposal = _load_pending(session, proposal_id)
    if proposal.client_id is None:
        raise InvalidInputError(f"proposal {proposal_id} has no client yet: assign its sender to a client first")
    final_minutes = proposal.minutes if minutes is None else minutes
    final_category = Category(proposal.category) if category is None else category
    final_project = proposal.project_id if project_id is None else project_id
    if final_minutes < 0:
        raise InvalidInputError(f"minutes must be zero or more, got {final_minutes}")
    if final_category is Category.IGNORED:
        raise InvalidInputError(f"proposal {proposal_id} is categorised ignored: reject it instead of approving")
    if final_category is Category.PROJECT_PREP and final_project is None:
        raise InvalidInputError(f"proposal {proposal_id} is project prep: name its project with --project")
    if final_category is not Category.PROJECT_PREP:
        final_project = None
    project = _project_of(session, final_project, proposal.client_id)
    client = session.get(Client, proposal.client_id)
    source = session.get(SourceItem, proposal.source_item_id)
    assert client is not None
    assert source is not None
    _claim(
        session,
        proposal,
        ProposalStatus.APPROVED,
        actor,
        minutes=final_minutes,
        category=final_category.value,
        project_id=final_project,
        decision_note=note,
    )
    facts = PostingContext(client=client, source=source, project=project)
    history = request_history(session, proposal.client_id, request_key(proposal, source))
    decision, entry = _post_proposal(session, actor, proposal, facts, policy, history)
    audit.record(
        session,
        actor,
        "proposal.approve",
        f"proposal:{proposal.id}",
        minutes=final_minutes,
        category=final_category.value,
        project=final_project,
        note=note,
        entry=entry.id if entry else None,
        charge=decision.reason,
    )
    return Approval(proposal, entry, decision)


def reject(session: Session, actor: str, proposal_id: int, reason: str) -> Proposal:
    """Reject a pending proposal; nothing is posted and the reason is kept."""
    if not reason.strip():
        raise InvalidInputError("a rejection needs a reason")
    proposal = _load_pending(session, proposal_id)
    _claim(session, proposal, ProposalStatus.REJECTED, actor, decision_note=reason)
    audit.record(session, actor, "proposal.reject", f"proposal:{proposal.id}", reason=reason)
    return proposal


def reverse_entry(session: Session, actor: str, entry_id: int, reason: str, today: date) -> LedgerEntry:
    """Cancel an entry with an opposite one; its proposal goes back to review for a new decision."""
    if not reason.strip():
        raise InvalidInputError("a reversal needs a reason")
    original = session.get(LedgerEntry, entry_id)
    if original is None:
        raise NotFoundError(f"no ledger entry {entry_id}")
    if original.kind == EntryKind.REVERSAL.value:
        raise InvalidInputError(f"entry {entry_id} is itself a reversal: post a new entry instead")
    earlier = session.exec(select(LedgerEntry.id).where(LedgerEntry.reverses_id == entry_id)).first()
    if earlier is not None:
        raise AlreadyReversedError(f"entry {entry_id} was already reversed by entry {earlier}")
    reversal = post_entry(
        session,
        LedgerEntry(
            client_id=original.client_id,
            effective_on=today,
            kind=EntryKind.REVERSAL.value,
            category=original.category,
            minutes=-original.minutes,
            channel=original.channel,
            subject=f"Reversal of entry {entry_id}: {original.subject}"[:SUBJECT_MAX],
            request_key=original.request_key,
            proposal_id=original.proposal_id,
            project_id=original.project_id,
            block_id=original.block_id,
            source_item_id=original.source_item_id,
            reverses_id=entry_id,
            idempotency_key=f"reversal:{entry_id}",
            reason=reason,
            actor=actor,
        ),
    )
    if original.proposal_id is not None:
        session.execute(
            sa.update(Proposal)
            .where(col(Proposal.id) == original.proposal_id, col(Proposal.status) == ProposalStatus.APPROVED.value)
            .values(
                status=ProposalStatus.PENDING.value,
                revision=Proposal.revision + 1,
                decided_by=None,
                decided_at=None,
                decision_note=None,
            )
            .execution_options(synchronize_session=False)
        )
    audit.record(session, actor, "entry.reverse", f"entry:{entry_id}", reversal=reversal.id, reason=reason)
    return reversal


def decide_project(
    session: Session, actor: str, project_id: int, status: ProjectStatus, policy: Policy, today: date
) -> list[LedgerEntry]:
    """Accept (prep waived, kept at 0) or decline (all prep charged today) a proposed project.

    Posts every approved prep proposal that was held for the decision; prep still pending
    review is posted by the policy when it is approved.
    """
    project = session.get(Project, project_id, populate_existing=True)
    if project is None:
        raise NotFoundError(f"no project {project_id}")
    result = session.execute(
        sa.update(Project)
        .where(col(Project.id) == project_id, col(Project.status) == ProjectStatus.PROPOSED.value)
        .values(status=status.value, decided_on=today, decided_by=actor)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(project)
        raise AlreadyDecidedError(f"project {project_id} is already {project.status}")
    session.refresh(project)
    client = session.get(Client, project.client_id)
    assert client is not None
    assert client.id is not None
    held = session.exec(
        select(Proposal, SourceItem)
        .join(SourceItem, col(SourceItem.id) == Proposal.source_item_id)
        .where(
            Proposal.project_id == project_id,
            Proposal.status == ProposalStatus.APPROVED.value,
            Proposal.category == Category.PROJECT_PREP.value,
        )
        .order_by(col(SourceItem.occurred_at), col(Proposal.id))
    ).all()
    history = request_history(session, client.id, f"project:{project_id}")
    entries = []
    for proposal, source in held:
        decision, entry = _post_proposal(
            session, actor, proposal, PostingContext(client, source, project), policy, history
        )
        assert entry is not None
        history = RequestHistory(
            history.logged_minutes + entry.logged_minutes, history.charged_minutes + decision.minutes
        )
        entries.append(entry)
    audit.record(
        session,
        actor,
        f"project.{'accept' if status is ProjectStatus.ACCEPTED else 'decline'}",
        f"project:{project_id}",
        entries=[e.id for e in entries],
        minutes=-sum(e.minutes for e in entries),
    )
    return entries
