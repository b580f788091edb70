"""Classifying stored and incoming items: the facts from mail and the database, then the engine."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session, col, select

from classify.conditions import Context
from classify.engine import Decision, classify
from classify.facts import ItemFacts, Project
from classify.modules import Catalogue
from classify.rules import RuleSet, load_rules
from ingest.attribution import Attribution, AttributionKind, Directory, counterpart, load_directory
from ingest.models import MailMessage
from ingest.parsing import ParsedEmail
from ledger.models import Client, ProjectStatus, Proposal, SourceItem
from ledger.models import Project as ProjectRow
from psp.config import Policy, Settings

SENDER_KIND = {AttributionKind.STAFF: "staff", AttributionKind.ADDRESS: "client", AttributionKind.DOMAIN: "client"}


@dataclass(frozen=True)
class World:
    """What classification needs from the database, read once: who is who, plans, open projects."""

    directory: Directory
    plans: Mapping[int, str] = field(default_factory=dict)
    projects: Mapping[int, tuple[Project, ...]] = field(default_factory=dict)


def load_world(session: Session, settings: Settings) -> World:
    plans = {client_id: plan for client_id, plan in session.exec(select(Client.id, Client.plan)).all() if client_id}
    projects: dict[int, list[Project]] = {}
    open_rows = session.exec(
        select(ProjectRow.id, ProjectRow.client_id, ProjectRow.name).where(
            col(ProjectRow.status) == ProjectStatus.PROPOSED.value
        )
    ).all()
    for project_id, client_id, name in open_rows:
        projects.setdefault(client_id, []).append(Project(project_id or 0, name))
    return World(load_directory(session, settings), plans, {k: tuple(v) for k, v in projects.items()})


@dataclass(frozen=True)
class Classifier:
    """The rules, the module catalogue and the policy, loaded once per run."""

    rules: RuleSet
    context: Context
    policy: Policy
    auto_approvable: frozenset[str]

    @classmethod
    def from_settings(cls, settings: Settings) -> Classifier:
        rules = load_rules(Path(settings.rules.file) if settings.rules.file else None)
        catalogue = Catalogue.build(settings.modules.ours, settings.modules.third_party, settings.module_aliases)
        return cls(rules, Context(catalogue), settings.policy, frozenset(settings.rules.auto_approve))

    def mail(
        self,
        parsed: ParsedEmail,
        who: Attribution,
        world: World,
        *,
        noise: str | None,
        thread_category: str | None,
        folder: str = "",
        reply_words: int = 0,
    ) -> Decision:
        """Decide a message, from the sender's point of view (staff mail is judged as our reply)."""
        client_id = counterpart(parsed, who, world.directory)
        facts = ItemFacts(
            channel="email",
            folder=folder or ("Sent" if who.kind is AttributionKind.STAFF else "INBOX"),
            sender=SENDER_KIND.get(who.kind, "unknown"),
            plan=world.plans.get(client_id) if client_id else None,
            subject=parsed.subject,
            new_text=parsed.new_text,
            text=parsed.text,
            headers=parsed.headers,
            attachments=len(parsed.attachments),
            noise=noise,
            thread_category=thread_category,
            projects=world.projects.get(client_id, ()) if client_id else (),
        )
        return classify(
            facts, self.rules, self.context, self.policy, reply_words=reply_words, auto_approvable=self.auto_approvable
        )


def thread_category(session: Session, parsed: ParsedEmail) -> str | None:
    """The category of the stored thread a message replies to (its first proposal), if any."""
    referenced = [*parsed.in_reply_to, *parsed.references]
    if not referenced:
        return None
    threads = (
        select(SourceItem.thread_key)
        .join(MailMessage, col(MailMessage.source_item_id) == SourceItem.id)
        .where(col(MailMessage.message_id).in_(referenced))
    )
    return session.exec(
        select(Proposal.proposed_category)
        .join(SourceItem, col(SourceItem.id) == Proposal.source_item_id)
        .where(col(SourceItem.thread_key).in_(threads))
        .order_by(col(SourceItem.occurred_at), col(Proposal.id))
    ).first()
