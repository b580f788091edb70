"""Posting to the ledger on SQLite and PostgreSQL: every category, projects, reversals, keys."""

from __future__ import annotations

import json
from datetime import date
from textwrap import dedent

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from ledger.errors import (
    AlreadyDecidedError,
    AlreadyReversedError,
    IdempotencyConflictError,
    InvalidInputError,
    NotFoundError,
)
from ledger.models import AuditEvent, Category, Client, EntryKind, LedgerEntry, Plan, Project, ProjectStatus, Proposal
from ledger.posting import approve, buy_block, decide_project, post_entry, reject, reverse_entry
from ledger.projects import add_project
from ledger.reports import balance
from psp.config import Settings
from tests import builders
from tests.builders import DAY, STAFF, ledger_text


def test_block_purchase_credits_the_balance(session: Session, settings: Settings) -> None:
    acme = builders.client(session)
    buy_block(session, STAFF, acme, settings.policy, minutes=360, ref="INV-1", on=DAY)
    session.commit()
    assert ledger_text(session, acme) == "2026-11-03 block - +360 = 360 PSP block purchased (360 min), ref INV-1"


def test_block_purchase_puts_a_client_without_plan_on_the_plan(session: Session, settings: Settings) -> None:
    bikes = builders.client(session, "Corner Bikes", Plan.NONE)
    buy_block(session, STAFF, bikes, settings.policy, minutes=360, ref=None, on=DAY)
    session.commit()
    assert balance(session, bikes).plan == "psp"


def test_every_category_posts_as_the_policy_says(session: Session, settings: Settings) -> None:
    acme = builders.client(session)
    buy_block(session, STAFF, acme, settings.policy, minutes=360, ref=None, on=date(2026, 11, 1))
    for minutes, category, subject in (
        (30, Category.BILLABLE, "Checkout broken"),
        (20, Category.MODULE_BUG, "Gift wrap bug"),
        (15, Category.PRE_SALES, "Quote request"),
    ):
        p = builders.proposal(session, acme, minutes, category=category, subject=subject)
        approve(session, STAFF, p.id or 0, settings.policy)
    session.commit()
    assert ledger_text(session, acme) == dedent(
        """\
        2026-11-01 block - +360 = 360 PSP block purchased (360 min)
        2026-11-03 charge billable -30 = 330 Checkout broken
        2026-11-03 charge module-bug +0 = 330 Gift wrap bug
        2026-11-03 charge pre-sales +0 = 330 Quote request"""
    )


def test_approval_can_change_minutes_and_category(session: Session, settings: Settings) -> None:
    acme = builders.client(session)
    p = builders.proposal(session, acme, 30)
    result = approve(session, STAFF, p.id or 0, settings.policy, minutes=45, note="long call")
    session.commit()
    assert result.entry is not None
    assert (result.entry.minutes, result.proposal.minutes, result.proposal.proposed_minutes) == (-45, 45, 30)
    q = builders.proposal(session, acme, 30, subject="Really a module bug")
    approve(session, STAFF, q.id or 0, settings.policy, category=Category.MODULE_BUG)
    session.commit()
    assert balance(session, acme).balance_minutes == -45


def _approve_prep(
    session: Session, settings: Settings, owner: Client, project: Project, minutes: tuple[int, ...]
) -> None:
    """Approve prep items `Spec N` for the project; while it is proposed, nothing is posted."""
    for n in minutes:
        p = builders.proposal(
            session, owner, n, category=Category.PROJECT_PREP, subject=f"Spec {n}", project_id=project.id
        )
        entry = approve(session, STAFF, p.id or 0, settings.policy).entry
        assert (entry is None) == (project.status == ProjectStatus.PROPOSED.value)


def test_prep_is_held_then_waived_when_the_project_is_accepted(session: Session, settings: Settings) -> None:
    acme = builders.client(session)
    project = add_project(session, STAFF, acme, "B2B portal")
    _approve_prep(session, settings, acme, project, (30, 45))
    session.commit()
    assert (balance(session, acme).balance_minutes, balance(session, acme).held_minutes) == (0, 75)
    decide_project(session, STAFF, project.id or 0, ProjectStatus.ACCEPTED, settings.policy, date(2026, 11, 20))
    session.commit()
    assert ledger_text(session, acme) == dedent(
        """\
        2026-11-03 charge project-prep +0 = 0 Spec 30
        2026-11-03 charge project-prep +0 = 0 Spec 45"""
    )
    assert balance(session, acme).held_minutes == 0


def test_declined_project_charges_all_prep_on_the_day_of_the_decision(session: Session, settings: Settings) -> None:
    acme = builders.client(session)
    project = add_project(session, STAFF, acme, "Subscriptions")
    _approve_prep(session, settings, acme, project, (30, 45))
    decide_project(session, STAFF, project.id or 0, ProjectStatus.DECLINED, settings.policy, date(2026, 11, 20))
    late = builders.proposal(
        session, acme, 10, category=Category.PROJECT_PREP, subject="Late prep", project_id=project.id
    )
    approve(session, STAFF, late.id or 0, settings.policy)
    session.commit()
    assert ledger_text(session, acme) == dedent(
        """\
        2026-11-20 charge project-prep -30 = -30 Spec 30
        2026-11-20 charge project-prep -45 = -75 Spec 45
        2026-11-20 charge project-prep -10 = -85 Late prep"""
    )


def test_declined_prep_of_a_client_without_plan_is_one_request_with_the_minimum(
    session: Session, settings: Settings
) -> None:
    bikes = builders.client(session, "Corner Bikes", Plan.NONE)
    project = add_project(session, STAFF, bikes, "Rentals")
    _approve_prep(session, settings, bikes, project, (30, 45))
    decide_project(session, STAFF, project.id or 0, ProjectStatus.DECLINED, settings.policy, date(2026, 11, 20))
    session.commit()
    assert balance(session, bikes).balance_minutes == -120


def test_project_is_decided_once(session: Session, settings: Settings) -> None:
    acme = builders.client(session)
    project = add_project(session, STAFF, acme, "Portal")
    decide_project(session, STAFF, project.id or 0, ProjectStatus.ACCEPTED, settings.policy, DAY)
    with pytest.raises(AlreadyDecidedError, match="already accepted"):
        decide_project(session, STAFF, project.id or 0, ProjectStatus.DECLINED, settings.policy, DAY)


def test_nonplan_requests_pay_the_two_hour_minimum_per_thread(session: Session, settings: Settings) -> None:
    bikes = builders.client(session, "Corner Bikes", Plan.NONE)
    for minutes, thread, subject in ((30, "t1", "First"), (60, "t1", "Second"), (45, "t1", "Third"), (10, "t2", "New")):
        p = builders.proposal(session, bikes, minutes, thread=thread, subject=subject)
        approve(session, STAFF, p.id or 0, settings.policy)
    session.commit()
    assert ledger_text(session, bikes) == dedent(
        """\
        2026-11-03 charge billable -120 = -120 First
        2026-11-03 charge billable +0 = -120 Second
        2026-11-03 charge billable -15 = -135 Third
        2026-11-03 charge billable -120 = -255 New"""
    )


def test_rejection_posts_nothing_and_keeps_the_reason(session: Session, settings: Settings) -> None:
    acme = builders.client(session)
    p = builders.proposal(session, acme, 30)
    reject(session, STAFF, p.id or 0, "duplicate")
    session.commit()
    assert ledger_text(session, acme) == ""
    stored = session.get(Proposal, p.id)
    assert stored is not None
    assert (stored.status, stored.decision_note, stored.decided_by) == ("rejected", "duplicate", STAFF)


def test_a_decided_proposal_cannot_be_decided_again(session: Session, settings: Settings) -> None:
    acme = builders.client(session)
    p = builders.proposal(session, acme, 30)
    approve(session, STAFF, p.id or 0, settings.policy)
    session.commit()
    with pytest.raises(AlreadyDecidedError, match=f"proposal {p.id} is already approved"):
        approve(session, STAFF, p.id or 0, settings.policy)
    with pytest.raises(AlreadyDecidedError):
        reject(session, STAFF, p.id or 0, "too late")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"minutes": -1}, "zero or more"),
        ({"category": Category.IGNORED}, "reject it instead"),
        ({"category": Category.PROJECT_PREP}, "--project"),
        ({"category": Category.PROJECT_PREP, "project_id": 999}, "no project 999"),
    ],
)
def test_bad_approvals_are_refused(session: Session, settings: Settings, changes: dict, message: str) -> None:
    acme = builders.client(session)
    p = builders.proposal(session, acme, 30)
    with pytest.raises((InvalidInputError, NotFoundError), match=message):
        approve(session, STAFF, p.id or 0, settings.policy, **changes)


def test_reversal_restores_the_balance_and_reopens_the_proposal(session: Session, settings: Settings) -> None:
    acme = builders.client(session)
    p = builders.proposal(session, acme, 30)
    entry = approve(session, STAFF, p.id or 0, settings.policy).entry
    assert entry is not None
    reverse_entry(session, STAFF, entry.id or 0, "wrong minutes", date(2026, 11, 5))
    session.commit()
    assert balance(session, acme).balance_minutes == 0
    assert balance(session, acme).pending_minutes == 30
    again = approve(session, STAFF, p.id or 0, settings.policy, minutes=20)
    session.commit()
    assert again.entry is not None
    assert again.entry.idempotency_key == f"proposal:{p.id}/1"
    assert ledger_text(session, acme) == dedent(
        """\
        2026-11-03 charge billable -30 = -30 Checkout broken
        2026-11-03 charge billable -20 = -50 Checkout broken
        2026-11-05 reversal billable +30 = -20 Reversal of entry 1: Checkout broken"""
    )


def test_an_entry_is_reversed_at_most_once(session: Session, settings: Settings) -> None:
    acme = builders.client(session)
    _, credit = buy_block(session, STAFF, acme, settings.policy, minutes=360, ref=None, on=DAY)
    reversal = reverse_entry(session, STAFF, credit.id or 0, "refund", DAY)
    session.commit()
    with pytest.raises(AlreadyReversedError, match=f"already reversed by entry {reversal.id}"):
        reverse_entry(session, STAFF, credit.id or 0, "again", DAY)
    with pytest.raises(InvalidInputError, match="itself a reversal"):
        reverse_entry(session, STAFF, reversal.id or 0, "undo", DAY)
    with pytest.raises(NotFoundError):
        reverse_entry(session, STAFF, 999, "missing", DAY)


def test_nonplan_reversal_recomputes_the_minimum(session: Session, settings: Settings) -> None:
    bikes = builders.client(session, "Corner Bikes", Plan.NONE)
    first = builders.proposal(session, bikes, 30, thread="t1", subject="First")
    entry = approve(session, STAFF, first.id or 0, settings.policy).entry
    assert entry is not None
    reverse_entry(session, STAFF, entry.id or 0, "wrong client", DAY)
    second = builders.proposal(session, bikes, 20, thread="t1", subject="Second")
    approve(session, STAFF, second.id or 0, settings.policy)
    session.commit()
    assert balance(session, bikes).balance_minutes == -120


def test_same_key_same_payload_is_the_same_entry(session: Session, settings: Settings) -> None:
    acme = builders.client(session)

    def draft(minutes: int) -> LedgerEntry:
        return LedgerEntry(
            client_id=acme.id or 0,
            effective_on=DAY,
            kind=EntryKind.BLOCK.value,
            minutes=minutes,
            subject="Block",
            idempotency_key="import:42",
            reason="test",
            actor=STAFF,
        )

    first = post_entry(session, draft(360))
    assert post_entry(session, draft(360)).id == first.id
    with pytest.raises(IdempotencyConflictError, match="differs in minutes"):
        post_entry(session, draft(300))
    session.commit()
    assert balance(session, acme).balance_minutes == 360


@pytest.mark.parametrize("statement", ["UPDATE ledger_entry SET minutes = 0", "DELETE FROM ledger_entry"])
def test_the_database_refuses_to_change_entries(session: Session, settings: Settings, statement: str) -> None:
    acme = builders.client(session)
    buy_block(session, STAFF, acme, settings.policy, minutes=360, ref=None, on=DAY)
    session.commit()
    with pytest.raises(DBAPIError, match="append-only"):
        session.execute(sa.text(statement))
    session.rollback()
    assert balance(session, acme).balance_minutes == 360


def test_every_staff_action_is_audited(session: Session, settings: Settings) -> None:
    acme = builders.client(session)
    buy_block(session, STAFF, acme, settings.policy, minutes=360, ref="INV-9", on=DAY)
    p = builders.proposal(session, acme, 30)
    entry = approve(session, STAFF, p.id or 0, settings.policy, note="ok").entry
    assert entry is not None
    reverse_entry(session, STAFF, entry.id or 0, "mistake", DAY)
    session.commit()
    events = session.exec(select(AuditEvent).order_by(AuditEvent.id)).all()  # type: ignore[arg-type]
    assert [(e.actor, e.action, e.target) for e in events] == [
        (STAFF, "client.add", f"client:{acme.id}"),
        (STAFF, "block.add", "block:1"),
        (STAFF, "proposal.approve", f"proposal:{p.id}"),
        (STAFF, "entry.reverse", f"entry:{entry.id}"),
    ]
    approval = json.loads(events[2].detail)
    assert (approval["minutes"], approval["note"], approval["entry"]) == (30, "ok", entry.id)
