"""Random sequences of ledger operations keep the ledger's promises, on SQLite and PostgreSQL.

After every step: each balance equals the sum of its entries; no entry written earlier has
changed; report running balances add up row by row; each reversal moved the balance back by
exactly the reversed amount; each approved, non-held proposal has one live entry.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from sqlmodel import Session, select

from ledger.errors import LedgerError
from ledger.models import Category, LedgerEntry, Plan, Project, ProjectStatus, Proposal
from ledger.posting import approve, buy_block, decide_project, reject, reverse_entry
from ledger.projects import add_project
from ledger.reports import balance, ledger_lines
from psp import db
from psp.config import Settings
from tests import builders
from tests.builders import STAFF
from tests.conftest import _empty_postgres

POLICY = Settings().policy
START = date(2026, 11, 1)
CATEGORIES = st.sampled_from([Category.BILLABLE, Category.MODULE_BUG, Category.PRE_SALES, Category.PROJECT_PREP])


def machine_for(fresh_url: Callable[[], str]) -> type[RuleBasedStateMachine]:
    class LedgerMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.engine = db.make_engine(fresh_url())
            self.session = Session(self.engine, expire_on_commit=False)
            self.clients = [
                builders.client(self.session, "Acme Shop", Plan.PSP),
                builders.client(self.session, "Corner Bikes", Plan.NONE),
            ]
            self.session.commit()
            self.seen: dict[int, tuple[object, ...]] = {}
            self.day = START
            self.serial = 0

        def teardown(self) -> None:
            self.session.close()
            self.engine.dispose()

        def _commit_or_rollback(self, action: Callable[[], object]) -> object:
            try:
                result = action()
            except LedgerError:
                self.session.rollback()
                return None
            self.session.commit()
            return result

        def _pending(self) -> list[Proposal]:
            return list(self.session.exec(select(Proposal).where(Proposal.status == "pending")).all())

        @rule(which=st.integers(0, 1), minutes=st.integers(1, 600))
        def buy(self, which: int, minutes: int) -> None:
            self._commit_or_rollback(
                lambda: buy_block(
                    self.session, STAFF, self.clients[which], POLICY, minutes=minutes, ref=None, on=self.day
                )
            )

        @rule(which=st.integers(0, 1), minutes=st.integers(0, 240), category=CATEGORIES, thread=st.integers(0, 3))
        def propose(self, which: int, minutes: int, category: Category, thread: int) -> None:
            owner = self.clients[which]
            project_id = None
            if category is Category.PROJECT_PREP:
                project_id = self.session.exec(select(Project.id).where(Project.client_id == owner.id)).first()
                if project_id is None:
                    category = Category.BILLABLE
            self.serial += 1
            builders.proposal(
                self.session,
                owner,
                minutes,
                category=category,
                subject=f"Item {self.serial}",
                thread=f"thread-{which}-{thread}",
                on=self.day,
                project_id=project_id,
            )
            self.session.commit()

        @rule(which=st.integers(0, 1))
        def open_project(self, which: int) -> None:
            self.serial += 1
            self._commit_or_rollback(lambda: add_project(self.session, STAFF, self.clients[which], f"P{self.serial}"))

        @rule(pick=st.integers(0, 50), accept=st.booleans())
        def decide(self, pick: int, accept: bool) -> None:
            projects = self.session.exec(select(Project).where(Project.status == "proposed")).all()
            if not projects:
                return
            project = projects[pick % len(projects)]
            status = ProjectStatus.ACCEPTED if accept else ProjectStatus.DECLINED
            self._commit_or_rollback(
                lambda: decide_project(self.session, STAFF, project.id or 0, status, POLICY, self.day)
            )

        @precondition(lambda self: bool(self._pending()))
        @rule(pick=st.integers(0, 50), minutes=st.none() | st.integers(0, 300))
        def approve_one(self, pick: int, minutes: int | None) -> None:
            pending = self._pending()
            proposal = pending[pick % len(pending)]
            self._commit_or_rollback(lambda: approve(self.session, STAFF, proposal.id or 0, POLICY, minutes=minutes))

        @precondition(lambda self: bool(self._pending()))
        @rule(pick=st.integers(0, 50))
        def reject_one(self, pick: int) -> None:
            pending = self._pending()
            proposal = pending[pick % len(pending)]
            self._commit_or_rollback(lambda: reject(self.session, STAFF, proposal.id or 0, "no"))

        @rule(pick=st.integers(0, 200))
        def reverse(self, pick: int) -> None:
            entries = self.session.exec(select(LedgerEntry).order_by(LedgerEntry.id)).all()  # type: ignore[arg-type]
            if not entries:
                return
            original = entries[pick % len(entries)]
            owner = next(c for c in self.clients if c.id == original.client_id)
            before = balance(self.session, owner).balance_minutes
            if self._commit_or_rollback(lambda: reverse_entry(self.session, STAFF, original.id or 0, "r", self.day)):
                assert balance(self.session, owner).balance_minutes == before - original.minutes

        @rule()
        def next_day(self) -> None:
            self.day += timedelta(days=1)

        @invariant()
        def balances_are_sums_and_reports_add_up(self) -> None:
            for owner in self.clients:
                total = self.session.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.minutes), 0)).where(
                        LedgerEntry.client_id == owner.id  # type: ignore[arg-type]
                    )
                ).scalar_one()
                assert balance(self.session, owner).balance_minutes == total
                running = 0
                for line in ledger_lines(self.session, owner):
                    running += line.minutes
                    assert line.balance == running
                assert running == total

        @invariant()
        def entries_never_change(self) -> None:
            for entry in self.session.exec(select(LedgerEntry)).all():
                snapshot = (entry.client_id, entry.minutes, entry.kind, entry.effective_on, entry.idempotency_key)
                assert self.seen.setdefault(entry.id or 0, snapshot) == snapshot

        @invariant()
        def approved_proposals_have_one_live_entry(self) -> None:
            reversed_ids = {e.reverses_id for e in self.session.exec(select(LedgerEntry)).all() if e.reverses_id}
            live: dict[int, int] = {}
            for entry in self.session.exec(select(LedgerEntry).where(LedgerEntry.kind == "charge")).all():
                if entry.id not in reversed_ids and entry.proposal_id:
                    live[entry.proposal_id] = live.get(entry.proposal_id, 0) + 1
            assert all(count == 1 for count in live.values())
            for proposal in self.session.exec(select(Proposal).where(Proposal.status == "pending")).all():
                assert proposal.id not in live

    return LedgerMachine


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_random_operation_sequences_keep_the_ledger_consistent(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    counter = iter(range(1_000_000))
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")

        def fresh_url() -> str:
            path = tmp_path / f"run-{next(counter)}.db"
            shutil.copyfile(template, path)
            return f"sqlite:///{path}"
    else:
        url: str = request.getfixturevalue("postgres_test_url")

        def fresh_url() -> str:
            _empty_postgres(url)
            return url

    run_state_machine_as_test(
        machine_for(fresh_url),
        settings=settings(
            max_examples=25, stateful_step_count=30, deadline=None, suppress_health_check=list(HealthCheck)
        ),
    )
