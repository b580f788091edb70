"""Classification against a database, on SQLite and PostgreSQL: the labelled set, the commands,
staff replies as evidence, and reclassification."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select
from typer.testing import CliRunner

from classify.reclassify import reclassify_pending
from classify.service import Classifier
from ingest.files import Location, RawMessage
from ingest.store import BatchStore
from ledger.clients import add_client
from ledger.models import LedgerEntry, Plan, Proposal
from ledger.posting import approve
from ledger.projects import add_project
from psp import db
from psp.cli import app
from psp.config import Rules, load_settings
from tests.builders import STAFF

LABELLED = Path(__file__).parent / "data" / "labelled"
WORLD_CONFIG = LABELLED / "psp.toml"
SETTINGS = load_settings(WORLD_CONFIG)
runner = CliRunner()
CLIENTS = (
    ("Acme Shop", "acme-shop.example", Plan.PSP, "B2B Wholesale Portal"),
    ("Bluebell Teas", "bluebellteas.example", Plan.PSP, "Subscription Boxes"),
    ("Corner Bikes", "cornerbikes.example", Plan.NONE, None),
    ("Délices de Lyon", "delices-lyon.example", Plan.PSP, None),
    ("Gartenwelt GmbH", "gartenwelt.example", Plan.PSP, "Multi-Warehouse Stock Sync"),
    ("Nordic Knits", "nordicknits.example", Plan.NONE, None),
)


def make_world(engine: Engine) -> None:
    """The labelled set's clients and open projects (tests/data/labelled/README.md)."""
    with db.transaction(engine) as session:
        for name, domain, plan, project in CLIENTS:
            client = add_client(session, STAFF, name, plan=plan, domains=(domain,))
            if project:
                add_project(session, STAFF, client, project)


def psp(db_url: str, *args: str, config: Path = WORLD_CONFIG) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--db", db_url, "--config", str(config), *args])
    return result.exit_code, result.stdout, result.stderr


def test_default_rules_get_at_least_90_percent_of_the_labelled_set_right(db_url: str, engine: Engine) -> None:
    make_world(engine)
    code, out, err = psp(db_url, "rules", "eval", str(LABELLED), "--labels", str(LABELLED / "labels.tsv"), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["total"] == 127
    assert result["accuracy"] >= 0.90
    code, out, _ = psp(db_url, "rules", "eval", str(LABELLED), "--labels", str(LABELLED / "labels.tsv"))
    assert out.startswith(f"accuracy {result['accuracy']:.1%} ({result['correct']} of 127)")


def test_classify_is_a_dry_run_with_the_contract_keys(db_url: str, engine: Engine) -> None:
    make_world(engine)
    code, out, err = psp(db_url, "classify", str(LABELLED / "002-acme-opc-blank-checkout.eml"), "--json")
    assert code == 0, err
    decision = json.loads(out)
    assert {"category", "minutes", "rule", "explanation"} <= decision.keys()
    assert (decision["category"], decision["rule"]) == ("billable", "third-party-module")
    assert 'trace points into "One-Page Checkout"' in decision["explanation"]
    with Session(engine) as session:
        assert session.exec(select(Proposal)).all() == []


def test_rules_check_reports_file_and_line(db_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "rules.toml"
    bad.write_text('[[rule]]\nname = "ok"\ncategory = "billable"\n\n[[rule]]\nname = "bad"\ncategory = "urgent"\n')
    code, out, err = psp(db_url, "rules", "check", "--file", str(bad))
    assert code == 1
    assert out == ""
    assert err.strip().startswith(f"error: {bad}:5: rule 'bad': category must be one of")
    code, out, _ = psp(db_url, "rules", "check")
    assert code == 0
    assert out.strip().endswith("10 rules OK")


def _mail(n: int, sender: str, subject: str, body: str, reply_to: int | None = None) -> RawMessage:
    headers = f"In-Reply-To: <t{reply_to}@test>\n" if reply_to else ""
    recipient = "jane@acme-shop.example" if "harbourcart" in sender else "support@harbourcart.example"
    raw = (
        f"From: {sender}\nTo: {recipient}\n"
        f"Subject: {subject}\nDate: Mon, 2 Mar 2026 1{n}:00:00 +0000\nMessage-ID: <t{n}@test>\n{headers}\n{body}\n"
    )
    return RawMessage(Location("test", "INBOX", 1, str(n)), raw.encode())


def test_our_reply_adds_its_writing_time_to_the_pending_proposal(engine: Engine) -> None:
    make_world(engine)
    question = _mail(1, "jane@acme-shop.example", "Shipping zones", "How do I add a shipping zone for Ireland?")
    answer = _mail(2, "anna@harbourcart.example", "Re: Shipping zones", "word " * 400, reply_to=1)
    with db.transaction(engine) as session:
        BatchStore(session, SETTINGS).store([question])
    with db.transaction(engine) as session:
        BatchStore(session, SETTINGS).store([answer])
    with Session(engine) as session:
        [proposal] = session.exec(select(Proposal)).all()
    assert (proposal.category, proposal.contact_minutes, proposal.minutes) == ("billable", 19, 10)
    assert proposal.explanation.endswith("; + reply 400 words 10 → contact 19 min → 10 min")


def test_reclassify_changes_pending_mail_proposals_only(db_url: str, engine: Engine, tmp_path: Path) -> None:
    make_world(engine)
    messages = [
        _mail(1, "jane@acme-shop.example", "Checkout", "The checkout page is blank."),
        _mail(2, "jane@acme-shop.example", "Shipping", "Where do I change shipping rates?"),
    ]
    with db.transaction(engine) as session:
        BatchStore(session, SETTINGS).store(messages)
        first = session.exec(select(Proposal).where(Proposal.id == 1)).one()
        approve(session, STAFF, first.id or 0, SETTINGS.policy)
    everything_free = tmp_path / "rules.toml"
    everything_free.write_text('[[rule]]\nname = "all-free"\ncategory = "pre-sales"\n')
    code, out, err = psp(db_url, "reclassify", "--file", str(everything_free))
    assert code == 0, err
    assert out.splitlines() == [
        "proposal 2: billable 5 min (client-support) → pre-sales 5 min (all-free)",
        "1 proposal(s) changed",
    ]
    with Session(engine) as session:
        rows = session.exec(select(Proposal.id, Proposal.status, Proposal.category).order_by(Proposal.id)).all()
    assert rows == [(1, "approved", "billable"), (2, "pending", "pre-sales")]


@pytest.mark.parametrize("line", ['[[rule]]\nname = "x"\ncategory = "billable"\nwhen = { colour = 1 }\n'])
def test_ingest_refuses_to_run_with_a_broken_rules_file(db_url: str, tmp_path: Path, line: str) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(line)
    config = tmp_path / "psp.toml"
    config.write_text(f'[rules]\nfile = "{rules}"\n')
    code, out, err = psp(db_url, "ingest", str(LABELLED / "002-acme-opc-blank-checkout.eml"), config=config)
    assert code == 1
    assert "unknown condition 'colour'" in err
    code, out, _ = psp(db_url, "proposals", "list", "--json", config=config)
    assert json.loads(out) == []


def test_auto_approve_posts_only_for_rules_an_admin_listed(engine: Engine, tmp_path: Path) -> None:
    make_world(engine)
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "trusted"\ncategory = "billable"\nminutes = 10\nauto_approve = true\n')
    listed = replace(SETTINGS, rules=Rules(file=str(rules), auto_approve=("trusted",)))
    unlisted = replace(SETTINGS, rules=Rules(file=str(rules)))
    with db.transaction(engine) as session:
        BatchStore(session, unlisted).store([_mail(1, "jane@acme-shop.example", "One", "Please look.")])
        BatchStore(session, listed).store([_mail(2, "jane@acme-shop.example", "Two", "Please look.")])
    with Session(engine) as session:
        rows = session.exec(select(Proposal.status, Proposal.decided_by).order_by(Proposal.id)).all()
        balance = session.exec(select(func.sum(LedgerEntry.minutes))).one()
    assert rows == [("pending", None), ("approved", "rule:trusted")]
    assert balance == -10


def test_auto_approve_posts_each_message_of_a_thread_in_one_batch(engine: Engine, tmp_path: Path) -> None:
    make_world(engine)
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "trusted"\ncategory = "billable"\nminutes = 10\nauto_approve = true\n')
    listed = replace(SETTINGS, rules=Rules(file=str(rules), auto_approve=("trusted",)))
    batch = [
        _mail(1, "jane@acme-shop.example", "Shipping zones", "Please look."),
        _mail(2, "jane@acme-shop.example", "Re: Shipping zones", "And one more thing.", reply_to=1),
    ]
    with db.transaction(engine) as session:
        BatchStore(session, listed).store(batch)
    with Session(engine) as session:
        rows = session.exec(select(Proposal.status).order_by(Proposal.id)).all()
        entries = session.exec(select(LedgerEntry.proposal_id).order_by(LedgerEntry.id)).all()
    assert rows == ["approved", "approved"]
    assert entries == [1, 2]


def _store_question_reply_and_follow_up(engine: Engine) -> None:
    """A client's question, our long reply, the client's follow-up: one thread, in one batch."""
    make_world(engine)
    batch = [
        _mail(1, "jane@acme-shop.example", "Shipping zones", "How do I add a shipping zone for Ireland?"),
        _mail(2, "anna@harbourcart.example", "Re: Shipping zones", "word " * 400, reply_to=1),
        _mail(3, "jane@acme-shop.example", "Re: Shipping zones", "Thanks, and how about Northern Ireland?", reply_to=2),
    ]
    with db.transaction(engine) as session:
        BatchStore(session, SETTINGS).store(batch)


def test_in_one_batch_our_reply_goes_to_the_request_it_answers(engine: Engine) -> None:
    _store_question_reply_and_follow_up(engine)
    with Session(engine) as session:
        contact = session.exec(select(Proposal.contact_minutes).order_by(Proposal.id)).all()
    assert contact == [19, 9]  # the reply's 10 minutes of writing belong to the first message


def test_reclassify_gives_our_reply_only_to_the_request_it_answered(engine: Engine) -> None:
    _store_question_reply_and_follow_up(engine)
    with db.transaction(engine) as session:
        reclassify_pending(session, SETTINGS, Classifier.from_settings(SETTINGS))
    with Session(engine) as session:
        contact = session.exec(select(Proposal.contact_minutes).order_by(Proposal.id)).all()
    assert contact == [19, 9]  # as intake gave them: the reply's writing time is the first request's
