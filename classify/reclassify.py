"""Re-running the rules over pending mail proposals after the rules change.

Only pending proposals are touched, never decided ones, and only those that came from mail:
a logged call's minutes were given by a person. Our replies already ingested in the thread count
again as writing time. A proposal the new rules call `ignored` is rejected, with the rule as the
reason, so nothing ignored waits in the review queue.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from classify.estimate import count_words
from classify.service import Classifier, load_world
from ingest.attribution import attribute
from ingest.models import MailMessage
from ingest.noise import noise_reason
from ingest.packing import unpack
from ingest.parsing import parse_message
from ledger import audit
from ledger.models import Category, Proposal, ProposalStatus, SourceItem
from ledger.posting import reject
from psp.config import Settings

ACTOR = "rules"


@dataclass(frozen=True)
class Change:
    proposal_id: int
    before: str
    after: str


def reclassify_pending(session: Session, settings: Settings, classifier: Classifier) -> list[Change]:
    """Apply the current rules to every pending mail proposal; return what changed."""
    world = load_world(session, settings)
    rows = session.exec(
        select(Proposal, SourceItem, MailMessage)
        .join(SourceItem, col(SourceItem.id) == Proposal.source_item_id)
        .join(MailMessage, col(MailMessage.source_item_id) == SourceItem.id)
        .where(col(Proposal.status) == ProposalStatus.PENDING.value)
        .order_by(col(SourceItem.occurred_at))
    ).all()
    threads = {item.thread_key for _, item, _ in rows}
    # Each reply's writing time goes to the pending request it answers, the latest one before it,
    # as intake gave it; not to every pending request of the thread.
    requests: dict[str, list[tuple[datetime, int | None]]] = defaultdict(list)  # rows come oldest first
    for proposal, item, _ in rows:
        requests[item.thread_key].append((item.occurred_at, proposal.id))
    reply_words: dict[int | None, int] = {}
    for thread, sent_at, raw in session.exec(
        select(SourceItem.thread_key, SourceItem.occurred_at, MailMessage.raw)
        .join(MailMessage, col(MailMessage.source_item_id) == SourceItem.id)
        .where(col(SourceItem.thread_key).in_(threads), col(MailMessage.direction) == "out")
    ).all():
        answered = [proposal_id for asked_at, proposal_id in requests[thread] if asked_at <= sent_at]
        if answered:
            words = count_words(parse_message(unpack(raw)).new_text)
            reply_words[answered[-1]] = reply_words.get(answered[-1], 0) + words
    first_category: dict[str, str] = {}
    for thread, category in session.exec(
        select(SourceItem.thread_key, Proposal.category)
        .join(Proposal, col(Proposal.source_item_id) == SourceItem.id)
        .where(col(SourceItem.thread_key).in_(threads), col(Proposal.status) != ProposalStatus.PENDING.value)
        .order_by(col(SourceItem.occurred_at))
    ).all():
        first_category.setdefault(thread, category)
    changes = []
    for proposal, item, stored in rows:
        parsed = parse_message(unpack(stored.raw))
        who = attribute(parsed.sender, parsed.auth_results, world.directory)
        decision = classifier.mail(
            parsed,
            who,
            world,
            noise=noise_reason(parsed),
            thread_category=first_category.get(item.thread_key),
            reply_words=reply_words.get(proposal.id, 0),
        )
        if decision.category is not Category.IGNORED:
            first_category.setdefault(item.thread_key, decision.category.value)
        before = f"{proposal.category} {proposal.minutes} min ({proposal.rule})"
        after = f"{decision.category.value} {decision.minutes} min ({decision.rule})"
        if decision.category is Category.IGNORED:
            reject(session, ACTOR, proposal.id or 0, decision.explanation)
        elif before != after or proposal.explanation != decision.explanation:
            proposal.category = proposal.proposed_category = decision.category.value
            proposal.minutes = proposal.proposed_minutes = decision.minutes
            proposal.contact_minutes = decision.contact_minutes
            proposal.rule, proposal.explanation = decision.rule, decision.explanation
            proposal.project_id = decision.project_id
            session.add(proposal)
            audit.record(session, ACTOR, "proposal.reclassify", f"proposal:{proposal.id}", before=before, after=after)
        else:
            continue
        changes.append(Change(proposal.id or 0, before, after))
    return changes
