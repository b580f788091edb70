"""The billing policy as pure functions: data in, a decision with its reason out.

Nothing here reads the database or the clock. The posting service gathers the facts (category,
plan, project state, what the request has already been charged) and asks these functions what to
post; the returned reason is stored on the ledger entry so every charge can be explained.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction

from ledger.models import Category, Plan, ProjectStatus
from psp.config import Policy


@dataclass(frozen=True)
class MinutesDecision:
    """Minutes to log for an item, and how they were derived from the contact time."""

    minutes: int
    reason: str


def _fraction_text(fraction: Fraction) -> str:
    return f"{float(fraction):g}"


def generous_minutes(contact_minutes: int, policy: Policy, *, billable: bool = True) -> MinutesDecision:
    """Log only a portion of contact time: the seed's "we do NOT log every moment".

    Contact time × fraction, rounded down to the step; a billable item logs at least the floor,
    since a request that needed us never costs nothing.
    """
    if contact_minutes < 0:
        raise ValueError(f"contact minutes cannot be negative: {contact_minutes}")
    step = policy.round_to_minutes
    share = contact_minutes * policy.fraction
    minutes = int(share // step) * step
    reason = f"{contact_minutes} min × {_fraction_text(policy.fraction)} → {minutes} min"
    if billable and minutes < policy.min_billable_minutes:
        minutes = policy.min_billable_minutes
        reason += f" (at least {minutes} min)"
    return MinutesDecision(minutes, reason)


class ChargeStatus(StrEnum):
    CHARGED = "charged"
    FREE = "free"
    HELD = "held"


@dataclass(frozen=True)
class RequestHistory:
    """What a support request (thread, ticket) has already posted.

    Attributes:
      logged_minutes: approved billable minutes already posted on it (reversed postings excluded).
      charged_minutes: what those postings charged, minimum included.
    """

    logged_minutes: int = 0
    charged_minutes: int = 0


@dataclass(frozen=True)
class ChargeDecision:
    """What posting an approved item does to the balance.

    Attributes:
      status: charged (debit), free (recorded at 0) or held (nothing posted yet).
      minutes: minutes to debit, never negative; 0 unless charged.
      reason: one line for the ledger entry and the report.
    """

    status: ChargeStatus
    minutes: int
    reason: str


def _free(reason: str) -> ChargeDecision:
    return ChargeDecision(ChargeStatus.FREE, 0, reason)


def charge_for(
    category: Category,
    minutes: int,
    plan: Plan,
    policy: Policy,
    *,
    project_status: ProjectStatus | None = None,
    history: RequestHistory = RequestHistory(),
) -> ChargeDecision:
    """Decide what an approved item of `minutes` charges.

    billable debits; module bugs and pre-sales are free but still recorded; project prep waits
    for the client's decision, is waived if the project is commissioned and charged in full if
    declined. A client without a plan pays at least the minimum per request: the charge is what
    lifts the request's total to `max(total, minimum)`, minus what the request already paid.
    """
    if minutes < 0:
        raise ValueError(f"minutes cannot be negative: {minutes}")
    if category is Category.IGNORED:
        return _free("ignored — never billed")
    if category is Category.MODULE_BUG:
        return _free("no charge — module bug")
    if category is Category.PRE_SALES:
        return _free("no charge — pre-sales")
    label = "billable"
    if category is Category.PROJECT_PREP:
        if project_status is None:
            raise ValueError("project prep needs a project")
        if project_status is ProjectStatus.PROPOSED:
            return ChargeDecision(ChargeStatus.HELD, 0, "held — waiting for the project decision")
        if project_status is ProjectStatus.ACCEPTED:
            return _free("no charge — prep waived, project commissioned")
        label = "project declined, prep charged"
    if plan is Plan.PSP:
        return ChargeDecision(ChargeStatus.CHARGED, minutes, f"{label}: {minutes} min")
    return _nonplan_charge(minutes, policy.nonplan_minimum_minutes, history, label)


def _nonplan_charge(minutes: int, minimum: int, history: RequestHistory, label: str) -> ChargeDecision:
    total = history.logged_minutes + minutes
    owed = max(total, minimum)
    # Never a refund: a minimum lowered since the request's first charge leaves that charge alone.
    charge = max(owed - history.charged_minutes, 0)
    if total < minimum:
        reason = f"{label}, no plan: request total {total} min, minimum {minimum} min"
    else:
        reason = f"{label}, no plan: request total {total} min"
    if history.charged_minutes:
        reason += f", {history.charged_minutes} min already charged"
    return ChargeDecision(ChargeStatus.CHARGED, charge, f"{reason} → {charge} min")
