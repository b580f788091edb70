"""`psp sync rt` against a real Request Tracker 5 (Debian's packages, SQLite, standalone server).

One RT serves the whole run; each test works in a queue of its own, so tests (and the two
database backends of one test) never see each other's tickets.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select
from typer.testing import CliRunner

from classify.estimate import count_words, minutes_for
from ingest.errors import IngestError
from ingest.imap import folder_lock
from ingest.request_tracker import RequestTrackerError
from ingest.rt_sync import sync_rt, system_name
from ingest.summary import IntakeSummary
from ingest.ticket_models import TicketEntry, TicketSyncState
from ledger.clients import add_client
from ledger.models import Category, Client, LedgerEntry, Plan, Proposal, SourceItem
from ledger.policy import generous_minutes
from ledger.posting import approve
from psp.cli import app
from psp.config import Rt, Settings, Staff
from tests.servers.request_tracker import (
    STAFF_ADDRESS,
    STAFF_PASSWORD,
    STAFF_USER,
    RequestTrackerServer,
    find_free_port,
)

ALICE = "alice@acme.example"
PSP = Path(sys.executable).with_name("psp")
TICKET_BASE_MINUTES = 5  # the default rules' base for a ticket, when no time was recorded


@pytest.fixture(scope="session")
def rt_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RequestTrackerServer]:
    server = RequestTrackerServer(tmp_path_factory.mktemp("request-tracker"), find_free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def queue(rt_server: RequestTrackerServer) -> str:
    name = f"Support {uuid.uuid4().hex[:8]}"
    rt_server.create_queue(name)
    return name


@pytest.fixture
def settings(rt_server: RequestTrackerServer, queue: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("PSP_RT_TOKEN", rt_server.token)
    return Settings(staff=Staff(addresses=(STAFF_ADDRESS,)), rt=Rt(url=rt_server.url, queues=(queue,)))


@pytest.fixture
def acme(engine: Engine) -> Client:
    with Session(engine, expire_on_commit=False) as session:
        client = add_client(session, "test", "Acme Shop", emails=(ALICE,))
        session.commit()
    return client


def counts(summary: IntakeSummary) -> tuple[int, int, int, int]:
    return summary.read, summary.stored, summary.duplicate, summary.ignored


def proposals(engine: Engine) -> list[tuple[Proposal, SourceItem]]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(Proposal, SourceItem)
                .join(SourceItem, col(SourceItem.id) == Proposal.source_item_id)
                .order_by(col(Proposal.id))
            ).all()
        )


def entry_count(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(TicketEntry)).one()


def estimated(text: str) -> int:
    """Contact minutes the default rules give a client's words when no time was recorded."""
    return minutes_for(count_words(text), 200) + TICKET_BASE_MINUTES


def test_new_tickets_and_replies_with_time_taken(
    engine: Engine, settings: Settings, rt_server: RequestTrackerServer, queue: str, acme: Client
) -> None:
    question = "Hello, the checkout page is broken since this morning. Can you look?"
    mailed = rt_server.client_mail(queue, ALICE, "Checkout broken", question)
    rt_server.reply(mailed, "Looking into it now.", time_taken=15)
    rt_server.reply(mailed, "Cache was stale; cleared it.", time_taken=30, comment=True)
    phoned = rt_server.create_ticket(queue, "Phone: new shipping zone", [ALICE], "Call notes.", time_taken=20)

    summary = sync_rt(engine, settings)

    # mail ticket: create, correspond, comment; phone ticket: create (RT's own records are not read)
    assert counts(summary) == (4, 4, 0, 0)
    by_ticket = {item.thread_key.rsplit(":", 1)[1]: (p, item) for p, item in proposals(engine)}
    assert set(by_ticket) == {str(mailed), str(phoned)}
    policy = settings.policy
    mail_proposal, mail_item = by_ticket[str(mailed)]
    contact = estimated(question) + 15 + 30  # the client's words, then the time our staff recorded
    assert (mail_item.channel, mail_item.client_id, mail_item.sender) == ("ticket", acme.id, ALICE)
    assert (mail_proposal.category, mail_proposal.contact_minutes) == ("billable", contact)
    assert mail_proposal.minutes == generous_minutes(contact, policy).minutes
    assert "recorded 15 min" in mail_proposal.explanation
    assert "recorded 30 min" in mail_proposal.explanation
    phone_proposal, _ = by_ticket[str(phoned)]
    assert (phone_proposal.contact_minutes, phone_proposal.minutes) == (20, generous_minutes(20, policy).minutes)
    assert entry_count(engine) == 4

    again = sync_rt(engine, settings)

    assert again.stored == again.ignored == 0
    assert again.read == again.duplicate  # the overlap re-reads recent tickets; nothing is stored twice
    assert (entry_count(engine), len(proposals(engine))) == (4, 2)


def test_a_ticket_updated_after_a_sync_brings_only_its_new_transactions(
    engine: Engine, settings: Settings, rt_server: RequestTrackerServer, queue: str, acme: Client
) -> None:
    ticket = rt_server.create_ticket(queue, "Product images missing", [ALICE], "Images gone.", time_taken=10)
    assert counts(sync_rt(engine, settings)) == (1, 1, 0, 0)
    rt_server.reply(ticket, "Restored from the backup.", time_taken=25)
    rt_server.client_mail(queue, ALICE, "Product images missing", "One more: the thumbnails are wrong?", ticket)

    summary = sync_rt(engine, settings)

    assert (summary.read, summary.stored, summary.duplicate) == (3, 2, 1)
    first, second = proposals(engine)
    assert first[0].contact_minutes == 10 + 25  # staff time goes to the request pending at that point
    assert second[0].category == "billable"  # the client's follow-up keeps the ticket's category
    assert second[1].thread_key == first[1].thread_key


def test_staff_time_on_a_ticket_with_nothing_pending_is_a_proposal_of_its_own(
    engine: Engine, settings: Settings, rt_server: RequestTrackerServer, queue: str, acme: Client
) -> None:
    ticket = rt_server.create_ticket(queue, "Slow admin", [ALICE], "The admin is slow.", time_taken=10)
    sync_rt(engine, settings)
    [(first, _)] = proposals(engine)
    with Session(engine) as session:
        approve(session, "anna", first.id or 0, settings.policy)
        session.commit()
    rt_server.reply(ticket, "Added an index; it is fast again.", time_taken=40)

    sync_rt(engine, settings)

    [_, (second, item)] = proposals(engine)
    assert (item.sender, item.client_id, second.category, second.rule) == (
        STAFF_ADDRESS,
        acme.id,
        "billable",
        "same-thread",
    )
    assert (second.contact_minutes, second.minutes) == (40, generous_minutes(40, settings.policy).minutes)


def test_an_auto_reply_that_reached_rt_is_stored_and_never_billed(
    engine: Engine, settings: Settings, rt_server: RequestTrackerServer, queue: str, acme: Client
) -> None:
    ticket = rt_server.create_ticket(queue, "Backup failed", [ALICE], "The nightly backup failed.", time_taken=5)
    rt_server.reply(ticket, "Which server?", time_taken=5)
    out_of_office = {"Auto-Submitted": "auto-replied"}
    rt_server.client_mail(queue, ALICE, "Backup failed", "I am away until Monday.", ticket, headers=out_of_office)

    summary = sync_rt(engine, settings)

    assert counts(summary) == (3, 2, 0, 1)
    [(proposal, _)] = proposals(engine)
    assert proposal.contact_minutes == 10
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(TicketEntry)).one() == 3  # stored, as evidence


def test_paging_over_tickets_and_histories(
    engine: Engine, settings: Settings, rt_server: RequestTrackerServer, queue: str, acme: Client
) -> None:
    tickets = [rt_server.create_ticket(queue, f"Question {n}", [ALICE], f"Question {n}?") for n in range(5)]
    for minutes in (5, 10, 15):  # a history longer than one page
        rt_server.reply(tickets[0], f"Update after {minutes} minutes.", time_taken=minutes)
    pages: list[tuple[int, int]] = []

    summary = sync_rt(
        engine, replace(settings, rt=replace(settings.rt, page_size=2)), on_page=lambda n, s: pages.append((n, s.read))
    )

    assert pages == [(1, 4 + 1), (2, 2), (3, 1)]
    assert counts(summary) == (8, 8, 0, 0)
    assert proposals(engine)[0][0].contact_minutes == estimated("Question 0?") + 5 + 10 + 15
    with Session(engine) as session:  # every text found, though the ticket's attachments span pages
        first = session.exec(
            select(SourceItem.excerpt)
            .where(SourceItem.thread_key == f"ticket:{system_name(settings.rt.url)}:{tickets[0]}")
            .order_by(col(SourceItem.occurred_at), col(SourceItem.id))
        ).all()
    assert first == ["Question 0?", *(f"Update after {m} minutes." for m in (5, 10, 15))]


def test_the_first_sync_can_leave_old_tickets_behind(
    engine: Engine, settings: Settings, rt_server: RequestTrackerServer, queue: str, acme: Client
) -> None:
    rt_server.create_ticket(queue, "Old news", [ALICE], "From before the ledger.")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()

    assert sync_rt(engine, replace(settings, rt=replace(settings.rt, since=tomorrow))).read == 0

    with Session(engine) as session:
        state = session.exec(select(TicketSyncState)).one()
    assert state.cursor is not None  # later syncs go on from here


def test_an_unknown_requestor_waits_for_staff(
    engine: Engine, settings: Settings, rt_server: RequestTrackerServer, queue: str, acme: Client
) -> None:
    rt_server.client_mail(queue, "stranger@elsewhere.example", "Do you build shops?", "We need a new shop built.")

    sync_rt(engine, settings)

    [(proposal, item)] = proposals(engine)
    assert (item.client_id, item.sender, proposal.category, proposal.rule) == (
        None,
        "stranger@elsewhere.example",
        Category.PRE_SALES.value,
        "prospect",
    )


def test_queue_and_custom_fields_reach_the_rules(
    engine: Engine, settings: Settings, rt_server: RequestTrackerServer, queue: str, acme: Client, tmp_path: Path
) -> None:
    rt_server.create_custom_field(f"Kind {queue}", queue)
    rules = tmp_path / "rules.toml"
    rules.write_text(
        f'[[rule]]\nname = "warranty"\ncategory = "module-bug"\n'
        f'when = {{ queue = "{queue}", custom_field = {{ name = "Kind {queue}", matches = "^warranty$" }} }}\n'
        '[[rule]]\nname = "anything"\ncategory = "billable"\nwhen = { sender = ["client", "staff"] }\n'
    )
    settings = replace(settings, rules=replace(settings.rules, file=str(rules)))
    rt_server.create_ticket(queue, "Gift wrap", [ALICE], "Broken.", custom_fields={f"Kind {queue}": "Warranty"})
    rt_server.create_ticket(queue, "New banner", [ALICE], "Please add.", custom_fields={f"Kind {queue}": "Change"})

    sync_rt(engine, settings)

    assert [(p.rule, p.category) for p, _ in proposals(engine)] == [
        ("warranty", "module-bug"),
        ("anything", "billable"),
    ]
    with Session(engine) as session:
        stored = session.exec(select(TicketEntry.queue, TicketEntry.custom_fields).order_by(col(TicketEntry.id))).all()
    assert stored[0] == (queue, json.dumps({f"Kind {queue}": ["Warranty"]}))


def test_a_ticket_is_one_request_for_the_two_hour_minimum(
    engine: Engine, settings: Settings, rt_server: RequestTrackerServer, queue: str
) -> None:
    with Session(engine, expire_on_commit=False) as session:
        corner = add_client(session, "test", "Corner Bikes", plan=Plan.NONE, emails=("sam@corner.example",))
        session.commit()
    ticket = rt_server.create_ticket(queue, "Stock sync", ["sam@corner.example"], "Stock is off.", time_taken=20)
    rt_server.client_mail(queue, "sam@corner.example", "Stock sync", "And the prices are off too?", ticket)
    sync_rt(engine, settings)

    with Session(engine) as session:
        for proposal, _ in proposals(engine):
            approve(session, "anna", proposal.id or 0, settings.policy)
        session.commit()
        charged = session.exec(select(LedgerEntry.minutes).where(LedgerEntry.client_id == corner.id)).all()
    assert sum(charged) == -settings.policy.nonplan_minimum_minutes  # two items, one request, one minimum


def test_rt_down_during_a_sync_loses_nothing_and_writes_nothing_half(
    db_url: str,
    engine: Engine,
    settings: Settings,
    rt_server: RequestTrackerServer,
    queue: str,
    acme: Client,
    tmp_path: Path,
) -> None:
    for n in range(3):
        ticket = rt_server.create_ticket(queue, f"Outage {n}", [ALICE], f"Site down {n}.", time_taken=5)
        rt_server.reply(ticket, "Restarted.", time_taken=10)
    settings = replace(settings, rt=replace(settings.rt, page_size=1, timeout_seconds=5))
    system = system_name(settings.rt.url)

    def stop_after_first_page(number: int, summary: IntakeSummary) -> None:
        if number == 1:
            rt_server.stop()

    try:
        with pytest.raises(RequestTrackerError, match=f"Request Tracker at {settings.rt.url} did not answer"):
            sync_rt(engine, settings, on_page=stop_after_first_page)
        with Session(engine) as session:
            state = session.exec(select(TicketSyncState).where(TicketSyncState.system == system)).one()
        assert (entry_count(engine), len(proposals(engine))) == (2, 1)  # the first page, whole
        assert state.cursor is None
        assert state.last_error
        assert "did not answer" in state.last_error

        config = tmp_path / "psp.toml"
        config.write_text(f'[rt]\nurl = "{settings.rt.url}"\nqueues = ["{queue}"]\n')
        result = CliRunner().invoke(app, ["--db", db_url, "--config", str(config), "sync", "rt", "--json"])
        assert result.exit_code == 1
        assert result.stderr.startswith(f"error: Request Tracker at {settings.rt.url} did not answer")
        assert result.stdout == ""
        [status] = json.loads(CliRunner().invoke(app, ["--db", db_url, "sync", "status", "--json"]).stdout)
        assert (status["system"], status["cursor"], status["stored"]) == (system, None, 2)
        assert status["last_error"].startswith(f"Request Tracker at {settings.rt.url} did not answer")
    finally:
        rt_server.start()

    summary = sync_rt(engine, settings)

    assert (summary.stored, summary.duplicate) == (4, 2)
    assert (entry_count(engine), len(proposals(engine))) == (6, 3)
    assert all(p.contact_minutes == 15 for p, _ in proposals(engine))
    with Session(engine) as session:
        state = session.exec(select(TicketSyncState).where(TicketSyncState.system == system)).one()
    assert state.cursor is not None
    assert state.last_error is None


def test_basic_auth_and_refused_credentials(
    engine: Engine, settings: Settings, rt_server: RequestTrackerServer, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt_server.create_ticket(queue, "Basic auth", [ALICE], "Hello.")
    monkeypatch.delenv("PSP_RT_TOKEN")
    monkeypatch.setenv("PSP_RT_PASSWORD", STAFF_PASSWORD)
    basic = replace(settings, rt=replace(settings.rt, user=STAFF_USER))
    assert sync_rt(engine, basic).stored == 1

    monkeypatch.setenv("PSP_RT_TOKEN", "1-14-00000000000000000000000000000000")
    with pytest.raises(RequestTrackerError, match=r"refused the credentials \(401"):
        sync_rt(engine, settings)


def test_poll_watch_syncs_rt_on_an_interval(
    db_url: str, engine: Engine, rt_server: RequestTrackerServer, queue: str, acme: Client, tmp_path: Path
) -> None:
    config = tmp_path / "psp.toml"
    config.write_text(f'[rt]\nurl = "{rt_server.url}"\nqueues = ["{queue}"]\ninterval_seconds = 1\n')
    rt_server.create_ticket(queue, "Before the watch", [ALICE], "First.")
    env = {**os.environ, "PSP_RT_TOKEN": rt_server.token}
    command = [str(PSP), "--db", db_url, "--config", str(config), "poll", "--watch"]
    watcher = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: entry_count(engine) == 1)
        rt_server.create_ticket(queue, "During the watch", [ALICE], "Second.")
        wait_for(lambda: entry_count(engine) == 2)
    finally:
        watcher.send_signal(signal.SIGTERM)
        _, stderr = watcher.communicate(timeout=30)
    assert watcher.returncode == 0, stderr
    assert "rt: 1 read, 1 stored" in stderr


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_on_postgresql_a_second_sync_of_the_same_rt_waits_its_turn(
    engine: Engine, settings: Settings, rt_server: RequestTrackerServer, queue: str, acme: Client
) -> None:
    rt_server.create_ticket(queue, "Two syncs", [ALICE], "Hello.")
    with folder_lock(engine, "request-tracker", system_name(settings.rt.url)):  # another sync holds RT
        if engine.dialect.name == "postgresql":
            with pytest.raises(IngestError, match=r"another sync of \S+ is running"):
                sync_rt(engine, settings)
            assert entry_count(engine) == 0
        else:  # SQLite's writers take turns by themselves
            assert sync_rt(engine, settings).stored == 1
