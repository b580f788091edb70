"""Storing mail from files on SQLite and PostgreSQL: once each, threaded, attributed, or quarantined."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from ingest.files import Location, RawMessage, read_paths
from ingest.intake import ingest_files
from ingest.models import MailLocation, MailMessage, QuarantinedMessage
from ingest.packing import unpack
from ingest.quarantine import list_quarantine, retry_quarantined
from ingest.store import BatchStore
from ingest.summary import IntakeSummary
from ledger.clients import add_client
from ledger.models import Plan, Proposal, SourceItem
from psp import db
from psp.config import Mail, Settings, Staff
from tests.builders import STAFF

LABELLED = Path(__file__).parent / "data" / "labelled"
HOSTILE = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "hostile"
WORLD = Settings(staff=Staff(domains=("harbourcart.example",)))


def labelled_files() -> list[Path]:
    return sorted(LABELLED.glob("*.eml"))


def labels() -> dict[str, str]:
    with (LABELLED / "labels.tsv").open(encoding="utf-8") as handle:
        return {row["file"]: row["category"] for row in csv.DictReader(handle, delimiter="\t")}


def message(text: str, uid: str = "1", folder: str = "test") -> RawMessage:
    return RawMessage(Location("file", folder, 0, uid), text.encode())


def _clients(engine: Engine) -> None:
    with db.transaction(engine) as session:
        add_client(session, STAFF, "Acme Shop", domains=("acme-shop.example",))
        add_client(session, STAFF, "Bluebell Teas", emails=("tom@bluebellteas.example",))
        add_client(session, STAFF, "Corner Bikes", plan=Plan.NONE, domains=("cornerbikes.example",))


def _count(session: Session, model: type) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


def test_labelled_mail_is_stored_once_and_reimport_adds_nothing(engine: Engine) -> None:
    _clients(engine)
    first = ingest_files(engine, WORLD, labelled_files())
    # ignored: 14 automated messages, 3 spam, 3 short thank-you notes (the default rules)
    assert first == IntakeSummary(read=127, stored=107, duplicate=0, ignored=20, quarantined=0)
    again = ingest_files(engine, WORLD, labelled_files())
    assert again == IntakeSummary(read=127, stored=0, duplicate=127, ignored=0, quarantined=0)
    with Session(engine) as session:
        assert (_count(session, MailMessage), _count(session, SourceItem), _count(session, MailLocation)) == (
            127,
            127,
            127,
        )


def test_staff_replies_and_ignored_mail_get_no_proposal(engine: Engine) -> None:
    _clients(engine)
    ingest_files(engine, WORLD, labelled_files())
    with Session(engine) as session:
        rows = session.exec(
            select(MailLocation.uid, MailMessage.direction, func.count(Proposal.id))
            .join(MailMessage, MailMessage.id == MailLocation.mail_message_id)
            .join(Proposal, Proposal.source_item_id == MailMessage.source_item_id, isouter=True)
            .group_by(MailLocation.uid, MailMessage.direction)
        ).all()
    expected = labels()
    assert sum(1 for _, direction, _ in rows if direction == "out") == 42
    for uid, direction, proposals in rows:
        wanted = 0 if direction == "out" or expected[uid] == "ignored" else 1
        assert proposals == wanted, uid


def test_attribution_by_address_then_domain_else_unmatched(engine: Engine) -> None:
    _clients(engine)
    ingest_files(engine, WORLD, labelled_files())
    with Session(engine) as session:
        rows = session.exec(
            select(MailMessage.sender, MailMessage.attribution, SourceItem.client_id, Proposal.category)
            .join(SourceItem, SourceItem.id == MailMessage.source_item_id)
            .join(Proposal, Proposal.source_item_id == SourceItem.id)
        ).all()
    attributed: dict[str | None, set[tuple[str, int | None]]] = {}
    categories: dict[str | None, set[str]] = {}
    for sender, how, client, category in rows:
        attributed.setdefault(sender, set()).add((how, client))
        categories.setdefault(sender, set()).add(category)
    assert attributed["jane@acme-shop.example"] == {("domain", 1)}
    assert attributed["tom@bluebellteas.example"] == {("address", 2)}
    assert attributed["lucia@tiendaolivos.example"] == {("unmatched", None)}
    assert "billable" in categories["jane@acme-shop.example"] & categories["tom@bluebellteas.example"]
    assert categories["lucia@tiendaolivos.example"] == {"pre-sales"}


def test_replies_join_their_thread(engine: Engine) -> None:
    ingest_files(engine, WORLD, labelled_files())
    with Session(engine) as session:
        rows = session.exec(
            select(MailMessage.message_id, MailMessage.in_reply_to, SourceItem.thread_key).join(
                SourceItem, SourceItem.id == MailMessage.source_item_id
            )
        ).all()
    thread_of = {message_id: thread for message_id, _, thread in rows}
    replies = [(parent, thread) for _, parent, thread in rows if parent in thread_of]
    assert len(replies) >= 50
    assert all(thread_of[parent] == thread for parent, thread in replies)


REPLY_BY_NEW_MAIL = """\
From: Jane <jane@acme-shop.example>
To: support@harbourcart.example
Subject: {subject}
Date: {date}
Message-ID: <{mid}@acme-shop.example>

{body}
"""


def test_same_subject_and_client_within_the_window_joins_the_thread(engine: Engine) -> None:
    _clients(engine)
    batch = [
        message(
            REPLY_BY_NEW_MAIL.format(
                subject="Shipping rates", date="Mon, 2 Mar 2026 10:00:00 +0000", mid="a", body="Rates are wrong."
            ),
            uid="1",
        ),
        message(
            REPLY_BY_NEW_MAIL.format(
                subject="RE: Shipping rates", date="Tue, 3 Mar 2026 10:00:00 +0000", mid="b", body="Still wrong."
            ),
            uid="2",
        ),
        message(
            REPLY_BY_NEW_MAIL.format(
                subject="Re: shipping  rates", date="Mon, 1 Jun 2026 10:00:00 +0000", mid="c", body="Months later."
            ),
            uid="3",
        ),
    ]
    with db.transaction(engine) as session:
        BatchStore(session, WORLD).store(batch)
    with Session(engine) as session:
        threads = session.exec(select(SourceItem.thread_key).order_by(SourceItem.occurred_at)).all()
    assert threads[0] == threads[1] == "mail:a@acme-shop.example"
    assert threads[2] == "mail:c@acme-shop.example"


def test_same_message_with_crlf_and_lf_is_one_message_but_shared_message_ids_are_not(engine: Engine) -> None:
    text = REPLY_BY_NEW_MAIL.format(subject="Hello", date="Mon, 2 Mar 2026 10:00:00 +0000", mid="same", body="One.")
    other = REPLY_BY_NEW_MAIL.format(subject="Hello", date="Mon, 2 Mar 2026 10:00:00 +0000", mid="same", body="Two.")
    batch = [
        message(text, uid="1"),
        RawMessage(Location("file", "test", 0, "2"), text.replace("\n", "\r\n").encode()),
        message(other, uid="3"),
    ]
    with db.transaction(engine) as session:
        summary = BatchStore(session, WORLD).store(batch)
    assert (summary.stored, summary.duplicate) == (2, 1)
    with Session(engine) as session:
        assert _count(session, MailLocation) == 3


def test_unverified_sender_waits_for_staff_when_our_server_is_trusted(engine: Engine) -> None:
    _clients(engine)
    trusting = Settings(staff=WORLD.staff, mail=Mail(trusted_authserv_id="mx1.harbourcart.example"))
    template = "Authentication-Results: {server}; dmarc={verdict} header.from=acme-shop.example\n" + REPLY_BY_NEW_MAIL
    batch = [
        message(
            template.format(
                server=server,
                verdict=verdict,
                subject=subject,
                date="Mon, 2 Mar 2026 10:00:00 +0000",
                mid=subject,
                body="Hello.",
            ),
            uid=subject,
        )
        for server, verdict, subject in (
            ("mx1.harbourcart.example", "pass", "A"),  # our server vouches for the sender
            ("mx1.harbourcart.example", "fail", "B"),  # our server says forged
            ("evil.example", "pass", "C"),  # someone else's verdict counts for nothing
        )
    ]
    with db.transaction(engine) as session:
        BatchStore(session, trusting).store(batch)
    with Session(engine) as session:
        rows = session.exec(
            select(SourceItem.subject, MailMessage.attribution, SourceItem.client_id)
            .join(MailMessage, MailMessage.source_item_id == SourceItem.id)
            .order_by(SourceItem.subject)
        ).all()
    assert rows == [("A", "domain", 1), ("B", "unverified", None), ("C", "unverified", None)]


@pytest.mark.skipif(not HOSTILE.is_dir(), reason=f"hostile corpus not found at {HOSTILE}")
def test_every_hostile_message_is_stored_or_quarantined(engine: Engine) -> None:
    with (HOSTILE / "MANIFEST.tsv").open(encoding="utf-8") as handle:
        manifest = list(csv.DictReader(handle, delimiter="\t"))
    files = [HOSTILE / row["file"] for row in manifest]
    summary = ingest_files(engine, WORLD, files)
    assert summary.read == len(files)
    assert summary.stored + summary.ignored + summary.duplicate + summary.quarantined == summary.read
    with Session(engine) as session:
        quarantined = set(session.exec(select(QuarantinedMessage.uid)).all())
        stored = set(session.exec(select(MailLocation.uid)).all())
    assert quarantined | stored == {row["file"] for row in manifest}
    for row in manifest:
        if row["expected_handling"].startswith("not RFC 5322 mail"):
            assert row["file"] in quarantined


def test_quarantine_keeps_the_raw_bytes_and_retry_counts_attempts(engine: Engine) -> None:
    garbage = RawMessage(Location("file", "test", 0, "junk.eml"), b"// not a mail at all\n")
    with db.transaction(engine) as session:
        summary = BatchStore(session, WORLD).store([garbage, garbage])
    assert (summary.quarantined, summary.duplicate) == (1, 1)
    with db.transaction(engine) as session:
        [row] = list_quarantine(session)
        assert "not a header field" in row.reason
        assert "still quarantined (attempt 2)" in retry_quarantined(session, WORLD, row.id)
        stored = session.get(QuarantinedMessage, row.id)
        assert stored is not None
        assert unpack(stored.raw) == garbage.raw


def test_nul_bytes_in_text_do_not_stop_storage(engine: Engine) -> None:
    text = REPLY_BY_NEW_MAIL.format(subject="Nul", date="Mon, 2 Mar 2026 10:00:00 +0000", mid="nul", body="a\x00b")
    with db.transaction(engine) as session:
        assert BatchStore(session, WORLD).store([message(text)]).stored == 1
    with Session(engine) as session:
        assert session.exec(select(SourceItem.excerpt)).one() == "ab"


def test_a_message_that_cannot_be_stored_is_quarantined_and_the_batch_goes_on(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_proposal = BatchStore._proposal

    def failing_proposal(decision: Any, item: dict[str, Any]) -> Any:
        if item["subject"] == "Broken":
            raise IntegrityError("INSERT INTO proposal", {}, Exception("simulated constraint failure"))
        return make_proposal(decision, item)

    monkeypatch.setattr(BatchStore, "_proposal", staticmethod(failing_proposal))
    batch = [
        message(
            REPLY_BY_NEW_MAIL.format(subject=subject, date="Mon, 2 Mar 2026 10:00:00 +0000", mid=subject, body=subject),
            uid=subject,
        )
        for subject in ("Before", "Broken", "After")
    ]
    with db.transaction(engine) as session:
        summary = BatchStore(session, WORLD).store(batch)
    assert (summary.stored, summary.quarantined) == (2, 1)
    with db.transaction(engine) as session:  # the same failure on a later poll: no second copy
        again = BatchStore(session, WORLD).store(batch)
    assert (again.duplicate, again.quarantined) == (3, 0)
    with Session(engine) as session:
        assert session.exec(select(SourceItem.subject).order_by(SourceItem.subject)).all() == ["After", "Before"]
        [reason] = session.exec(select(QuarantinedMessage.reason)).all()
    assert reason == "could not be stored: simulated constraint failure"


def test_files_maildir_and_mbox_are_read(tmp_path: Path) -> None:
    mbox = tmp_path / "box.mbox"
    envelope = b"From a@b Mon Mar  2 10:00:00 2026\n"
    mbox.write_bytes(envelope + b"Subject: one\n\nx\n\n" + envelope + b"Subject: two\n\ny\n")
    maildir = Path(__file__).parents[1] / "psp" / "sample_data" / "maildir"
    found = list(read_paths([mbox, maildir, labelled_files()[0]]))
    assert len(found) == 2 + len(list((maildir / "cur").iterdir())) + 1
    assert found[0].raw.startswith(b"Subject: one")
