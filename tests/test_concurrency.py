"""Two staff approving the same proposal at the same moment post exactly one entry.

Each approver has its own connection and transaction; a barrier releases both just before they
decide, so the two UPDATEs really meet in the database. Repeated to give the race many chances.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from ledger.errors import AlreadyDecidedError
from ledger.models import LedgerEntry, Proposal
from ledger.posting import approve
from psp import db
from psp.config import Settings
from tests import builders

ROUNDS = 15


def _race(engine: Engine, proposal_id: int, settings: Settings) -> list[str]:
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    lock = threading.Lock()

    # On PostgreSQL both transactions read "pending" before the barrier, so both pass the
    # status check and meet at the UPDATE. SQLite transactions take the write lock at BEGIN
    # (IMMEDIATE), so there the second approver waits at BEGIN instead.
    read_first = engine.dialect.name == "postgresql"

    def approver(name: str, minutes: int) -> None:
        if not read_first:
            barrier.wait()
        with Session(engine, expire_on_commit=False) as session:
            proposal = session.get(Proposal, proposal_id)
            assert proposal is not None
            if read_first:
                assert proposal.status == "pending"
                barrier.wait()
            try:
                approve(session, name, proposal_id, settings.policy, minutes=minutes)
                session.commit()
                result = f"approved by {name}"
            except AlreadyDecidedError:
                session.rollback()
                result = "already decided"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=approver, args=(n, m)) for n, m in (("anna", 30), ("ben", 45))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return sorted(outcomes)


@pytest.mark.parametrize("db_url", ["postgres", "sqlite"], indirect=True)
def test_simultaneous_approvals_post_one_entry(db_url: str, settings: Settings) -> None:
    engine = db.make_engine(db_url)
    with db.transaction(engine) as session:
        acme = builders.client(session)
        ids = [builders.proposal(session, acme, 30, subject=f"Race {n}").id or 0 for n in range(ROUNDS)]
    for proposal_id in ids:
        outcomes = _race(engine, proposal_id, settings)
        assert outcomes[0] == "already decided"
        assert outcomes[1].startswith("approved by ")
    with Session(engine) as session:
        entries = session.exec(select(LedgerEntry.proposal_id, func.count()).group_by(LedgerEntry.proposal_id)).all()
        approved = session.exec(select(func.count()).where(Proposal.status == "approved")).one()
    engine.dispose()
    assert sorted(entries) == [(i, 1) for i in ids]
    assert approved == ROUNDS
