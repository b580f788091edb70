"""The engine: the first rule whose conditions all hold decides, and says why.

Pure: facts, rules and policy in; a `Decision` out, carrying the rule's name and a one-line
explanation of the category and of the minutes, e.g.
`rule third-party-module: names "One-Page Checkout"; contact 18 min (read 420 words 2 + reply
310 words 8 + base 8) × 0.75 → 10 min`.
"""

from __future__ import annotations

from dataclasses import dataclass

from classify.conditions import Context, mentioned_project
from classify.estimate import estimate
from classify.facts import ItemFacts
from classify.rules import Rule, RuleSet
from ledger.models import Category
from psp.config import Policy

FALLBACK_RULE = "no-rule-matched"


@dataclass(frozen=True)
class Decision:
    """Category and minutes proposed for an item, with the rule and its explanation."""

    category: Category
    minutes: int
    contact_minutes: int
    rule: str
    explanation: str
    project_id: int | None = None
    auto_approve: bool = False


def _evidence(rule: Rule, facts: ItemFacts, context: Context) -> list[str] | None:
    found = []
    for _, condition in rule.conditions:
        evidence = condition(facts, context)
        if evidence is None:
            return None
        found.append(evidence)
    return found


def _fallback_category(facts: ItemFacts) -> Category:
    return Category.BILLABLE if facts.sender == "client" else Category.PRE_SALES


def classify(
    facts: ItemFacts,
    rules: RuleSet,
    context: Context,
    policy: Policy,
    *,
    reply_words: int = 0,
    auto_approvable: frozenset[str] = frozenset(),
) -> Decision:
    """Decide an item's category and minutes; `reply_words` counts our reply to it, if known."""
    chosen: Rule | None = None
    evidence: list[str] = []
    for rule in rules.rules:
        found = _evidence(rule, facts, context)
        if found is not None:
            chosen, evidence = rule, found
            break
    if chosen is None:
        category, name, why = _fallback_category(facts), FALLBACK_RULE, "no rule matched"
    else:
        category = chosen.category or Category(facts.thread_category or _fallback_category(facts))
        name, why = chosen.name, "; ".join(evidence) or chosen.description or "always"
    if category is Category.IGNORED:
        return Decision(category, 0, 0, name, f"rule {name}: {why}")
    if chosen is not None and chosen.fixed_minutes is not None:
        minutes = contact = chosen.fixed_minutes
        how = f"{minutes} min fixed by the rule"
    else:
        guess = estimate(
            channel=facts.channel,
            new_text=facts.new_text,
            attachments=facts.attachments,
            reply_words=reply_words,
            given_minutes=facts.given_minutes,
            billable=category is Category.BILLABLE,
            policy=policy,
            settings=rules.estimate,
        )
        minutes, contact, how = guess.minutes, guess.contact_minutes, guess.reason
    project = mentioned_project(facts) if chosen is not None and chosen.link_project else None
    return Decision(
        category=category,
        minutes=minutes,
        contact_minutes=contact,
        rule=name,
        explanation=f"rule {name}: {why}; {how}",
        project_id=project.id if project else None,
        auto_approve=chosen is not None and chosen.auto_approve and chosen.name in auto_approvable,
    )
