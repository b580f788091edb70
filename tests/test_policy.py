"""The billing policy as pure functions: every category, the generous rule, the non-plan minimum."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.models import Category, Plan, ProjectStatus
from ledger.policy import ChargeStatus, RequestHistory, charge_for, generous_minutes
from psp.config import Policy

POLICY = Policy()


@pytest.mark.parametrize(
    ("contact", "billable", "expected"),
    [
        (18, True, 10),  # 13.5 → rounded down to 10
        (40, True, 30),
        (60, True, 45),
        (90, True, 65),  # 67.5 → 65
        (1, True, 5),  # floor for a billable item
        (0, True, 5),
        (0, False, 0),  # free items have no floor
        (6, False, 0),  # 4.5 → 0
        (7, False, 5),  # 5.25 → 5
    ],
)
def test_generous_minutes_logs_a_rounded_down_share(contact: int, billable: bool, expected: int) -> None:
    decision = generous_minutes(contact, POLICY, billable=billable)
    assert decision.minutes == expected
    assert f"{contact} min × 0.75" in decision.reason


def test_generous_minutes_reason_names_the_floor() -> None:
    assert generous_minutes(2, POLICY).reason == "2 min × 0.75 → 0 min (at least 5 min)"


def test_generous_minutes_follows_configuration() -> None:
    policy = Policy(logged_fraction=0.5, round_to_minutes=15, min_billable_minutes=15)
    assert generous_minutes(100, policy).minutes == 45  # 50 → 45
    assert generous_minutes(10, policy).minutes == 15


def test_generous_minutes_refuses_negative_contact_time() -> None:
    with pytest.raises(ValueError, match="negative"):
        generous_minutes(-1, POLICY)


@given(contact=st.integers(min_value=0, max_value=100_000))
def test_generous_minutes_never_exceeds_contact_time_and_is_a_step(contact: int) -> None:
    minutes = generous_minutes(contact, POLICY, billable=False).minutes
    assert minutes <= contact
    assert minutes % POLICY.round_to_minutes == 0
    assert contact * 3 // 4 - minutes < POLICY.round_to_minutes


def test_billable_on_a_plan_debits_the_minutes() -> None:
    decision = charge_for(Category.BILLABLE, 30, Plan.PSP, POLICY)
    assert (decision.status, decision.minutes, decision.reason) == (ChargeStatus.CHARGED, 30, "billable: 30 min")


@pytest.mark.parametrize(
    ("category", "reason"),
    [
        (Category.MODULE_BUG, "no charge — module bug"),
        (Category.PRE_SALES, "no charge — pre-sales"),
        (Category.IGNORED, "ignored — never billed"),
    ],
)
@pytest.mark.parametrize("plan", [Plan.PSP, Plan.NONE])
def test_free_categories_charge_nothing_on_any_plan(category: Category, reason: str, plan: Plan) -> None:
    decision = charge_for(category, 45, plan, POLICY)
    assert (decision.status, decision.minutes, decision.reason) == (ChargeStatus.FREE, 0, reason)


def test_project_prep_waits_for_the_decision() -> None:
    decision = charge_for(Category.PROJECT_PREP, 30, Plan.PSP, POLICY, project_status=ProjectStatus.PROPOSED)
    assert (decision.status, decision.minutes) == (ChargeStatus.HELD, 0)


def test_project_prep_is_waived_when_the_project_is_commissioned() -> None:
    decision = charge_for(Category.PROJECT_PREP, 30, Plan.PSP, POLICY, project_status=ProjectStatus.ACCEPTED)
    assert (decision.status, decision.minutes) == (ChargeStatus.FREE, 0)
    assert "waived" in decision.reason


def test_project_prep_is_charged_when_the_project_is_declined() -> None:
    decision = charge_for(Category.PROJECT_PREP, 30, Plan.PSP, POLICY, project_status=ProjectStatus.DECLINED)
    assert (decision.status, decision.minutes) == (ChargeStatus.CHARGED, 30)
    assert decision.reason == "project declined, prep charged: 30 min"


def test_project_prep_without_a_project_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="needs a project"):
        charge_for(Category.PROJECT_PREP, 30, Plan.PSP, POLICY)


def test_nonplan_request_pays_the_minimum_first() -> None:
    decision = charge_for(Category.BILLABLE, 30, Plan.NONE, POLICY)
    assert decision.minutes == 120
    assert decision.reason == "billable, no plan: request total 30 min, minimum 120 min → 120 min"


def test_nonplan_request_pays_nothing_more_until_it_passes_the_minimum() -> None:
    history = RequestHistory(logged_minutes=30, charged_minutes=120)
    assert charge_for(Category.BILLABLE, 60, Plan.NONE, POLICY, history=history).minutes == 0
    history = RequestHistory(logged_minutes=90, charged_minutes=120)
    later = charge_for(Category.BILLABLE, 45, Plan.NONE, POLICY, history=history)
    assert later.minutes == 15
    assert later.reason == "billable, no plan: request total 135 min, 120 min already charged → 15 min"


def test_nonplan_minimum_lowered_later_never_refunds() -> None:
    history = RequestHistory(logged_minutes=30, charged_minutes=120)
    assert (
        charge_for(Category.BILLABLE, 10, Plan.NONE, Policy(nonplan_minimum_minutes=60), history=history).minutes == 0
    )


@given(items=st.lists(st.integers(min_value=0, max_value=500), min_size=1, max_size=12))
def test_nonplan_request_total_is_max_of_logged_and_minimum(items: list[int]) -> None:
    history = RequestHistory()
    for minutes in items:
        decision = charge_for(Category.BILLABLE, minutes, Plan.NONE, POLICY, history=history)
        history = RequestHistory(history.logged_minutes + minutes, history.charged_minutes + decision.minutes)
    assert history.charged_minutes == max(sum(items), POLICY.nonplan_minimum_minutes)


def test_negative_minutes_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        charge_for(Category.BILLABLE, -5, Plan.PSP, POLICY)
