"""Monthly statements: the month's numbers, its time-zone boundaries, the four renderings, and
sending each one once through a real SMTP server on loopback — on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import replace
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path

import pypdf
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select
from typer.testing import CliRunner, Result

import ledger.statements
from ledger.clients import add_client
from ledger.errors import InvalidInputError
from ledger.models import Category, Channel, Client, Plan, SourceItem
from ledger.policy import generous_minutes
from ledger.posting import approve, buy_block, reverse_entry
from ledger.proposals import propose
from ledger.statements import (
    ReconciliationError,
    StatementLine,
    StatementMonth,
    build_statement,
    gather_statements,
    nonplan_summary,
)
from notify.models import OutgoingMail, Statement
from notify.statement_documents import money, pdf_text, render_documents
from psp import db
from psp.cli import app
from psp.config import Policy
from tests import builders
from tests.builders import STAFF
from tests.servers.smtp import SmtpServer, free_port

OCTOBER = StatementMonth(2026, 10)
POLICY = Policy()
runner = CliRunner()


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def charge(
    session: Session,
    owner: Client,
    contact: int,
    at: datetime,
    *,
    subject: str = "Checkout broken",
    category: Category = Category.BILLABLE,
    minutes: int | None = None,
    policy: Policy = POLICY,
) -> int:
    """An item that happened at `at` (UTC), proposed at the generous rule's minutes and approved; returns its entry."""
    item = SourceItem(
        client_id=owner.id,
        channel=Channel.EMAIL.value,
        subject=subject,
        occurred_at=at,
        thread_key=f"thread:{subject}:{at.isoformat()}",
        source_key=f"item:{owner.slug}:{subject}:{at.isoformat()}",
    )
    session.add(item)
    session.flush()
    proposal = propose(
        session,
        item,
        category=category,
        contact_minutes=contact,
        minutes=minutes if minutes is not None else generous_minutes(contact, policy).minutes,
        rule="test",
        explanation="test",
    )
    approval = approve(session, STAFF, proposal.id or 0, policy)
    assert approval.entry is not None
    assert approval.entry.id is not None
    return approval.entry.id


def line(n: int, charged: int, balance: int, kind: str = "charge") -> StatementLine:
    return StatementLine(
        id=n,
        date=date(2026, 10, n),
        kind=kind,
        category="billable",
        channel="email",
        subject=f"Item {n}",
        charged=charged,
        balance=balance,
        work_minutes=charged,
        contact_minutes=charged,
        request_key=f"thread:{n}",
        reverses=None,
        block_ref=None,
        reason="",
    )


# --- pure parts ------------------------------------------------------------------------------


def test_months_are_named_yyyy_mm_or_last() -> None:
    assert StatementMonth.parse("2026-02", date(2026, 11, 26)) == StatementMonth(2026, 2)
    assert StatementMonth.parse("last", date(2026, 1, 5)) == StatementMonth(2025, 12)
    assert (StatementMonth(2028, 2).first, StatementMonth(2028, 2).last) == (date(2028, 2, 1), date(2028, 2, 29))
    for bad in ("2026-13", "2026-1", "October", "2026-10-01", ""):
        with pytest.raises(InvalidInputError, match="use YYYY-MM"):
            StatementMonth.parse(bad, date(2026, 11, 26))


def test_a_statement_that_does_not_reconcile_is_an_error_naming_the_numbers() -> None:
    acme = Client(id=1, slug="acme-shop", name="Acme Shop")
    lines = [line(3, 30, 330), line(9, 45, 285)]
    assert build_statement(acme, (), OCTOBER, 360, 285, lines, POLICY).charged_minutes == 75
    with pytest.raises(ReconciliationError) as error:
        build_statement(acme, (), OCTOBER, 360, 300, lines, POLICY)
    assert str(error.value) == (
        "statement for acme-shop 2026-10 does not reconcile: opening 360 min -75 min of items = 285 min, "
        "but the closing balance is 300 min (+15 min unexplained)"
    )
    with pytest.raises(ReconciliationError, match="last running balance is 280 min, but the closing balance is 285"):
        build_statement(acme, (), OCTOBER, 360, 285, [line(3, 30, 330), line(9, 45, 280)], POLICY)


def test_without_a_plan_the_amount_due_and_what_a_plan_would_have_cost() -> None:
    lines = [line(3, 120, -120), line(9, 120, -240), line(20, 120, -360)]
    work = [replace(item, work_minutes=w) for item, w in zip(lines, (20, 100, 250), strict=True)]
    summary = nonplan_summary(work, rate_cents=8550, policy=POLICY)
    assert summary.requests == 3
    assert summary.charged_minutes == 360
    assert summary.amount_due_cents == 51300  # 6 h at 85.50
    assert (summary.work_minutes, summary.plan_blocks) == (370, 2)
    assert summary.plan_cost_cents == 2 * 51300  # a block priced at the hourly rate
    priced = nonplan_summary(work, rate_cents=8550, policy=replace(POLICY, block_price_cents=45000))
    assert priced.plan_cost_cents == 90000


def test_amounts_and_pdf_text() -> None:
    assert money(123456, "GBP") == "GBP 1,234.56"
    assert money(-5, "EUR") == "EUR -0.05"
    assert pdf_text("Café — “ok” … 中文") == 'Café - "ok" ... ??'


# --- the month from the database ---------------------------------------------------------------


def test_a_month_gathered_from_the_ledger(engine: Engine) -> None:
    with db.transaction(engine) as session:
        acme = add_client(session, STAFF, "Acme Shop", emails=("jane@acme-shop.example", "ap@acme-shop.example"))
        buy_block(session, STAFF, acme, POLICY, minutes=360, ref="INV-1", on=date(2026, 9, 2))
        charge(session, acme, 60, moment("2026-09-20T10:00:00"), subject="September work")  # before: opening 315
        charge(session, acme, 40, moment("2026-10-03T10:00:00"), subject="Blank checkout page")  # 30
        charge(session, acme, 20, moment("2026-10-05T10:00:00"), subject="Gift wrap bug", category=Category.MODULE_BUG)
        wrong = charge(session, acme, 120, moment("2026-10-10T10:00:00"), subject="Training")  # 90
        reverse_entry(session, STAFF, wrong, "agreed with the client", date(2026, 10, 13))
        buy_block(session, STAFF, acme, POLICY, minutes=360, ref="INV-2", on=date(2026, 10, 20))
        charge(session, acme, 30, moment("2026-11-02T10:00:00"), subject="November work")  # after the month
        builders.client(session, "Quiet Shop")  # no account: no statement
        quiet = builders.client(session, "Quiet Garden")
        buy_block(session, STAFF, quiet, POLICY, minutes=360, ref=None, on=date(2026, 8, 1))
        builders.client(session, "Corner Bikes", plan=Plan.NONE)  # no plan, nothing this month
    with Session(engine) as session:
        statements = {s.slug: s for s in gather_statements(session, OCTOBER, POLICY)}
    assert sorted(statements) == ["acme-shop", "quiet-garden"]
    acme_month = statements["acme-shop"]
    assert (acme_month.opening, acme_month.closing) == (315, 645)
    assert [(item.date.day, item.kind, item.charged, item.balance) for item in acme_month.lines] == [
        (3, "charge", 30, 285),
        (5, "charge", 0, 285),
        (10, "charge", 90, 195),
        (13, "reversal", -90, 285),
        (20, "block", -360, 645),
    ]
    assert (acme_month.charged_minutes, acme_month.credited_minutes) == (120, 450)
    assert [b.block_ref for b in acme_month.blocks] == ["INV-2"]
    assert [(f.subject, f.work_minutes) for f in acme_month.free_items] == [("Gift wrap bug", 15)]
    assert acme_month.uncharged_contact_minutes == (40 - 30) + 20  # the reversed training is not counted
    assert acme_month.contacts == ("ap@acme-shop.example", "jane@acme-shop.example")
    assert acme_month.nonplan is None
    assert (statements["quiet-garden"].opening, statements["quiet-garden"].lines) == (360, ())


def test_a_client_without_a_plan_gets_its_amount_due(engine: Engine) -> None:
    with db.transaction(engine) as session:
        bikes = add_client(session, STAFF, "Corner Bikes", plan=Plan.NONE, hourly_rate_cents=8500)
        charge(session, bikes, 30, moment("2026-10-07T10:00:00"), subject="Payment error")  # 20 → 120
        charge(session, bikes, 150, moment("2026-10-16T10:00:00"), subject="Sales report", minutes=100)  # → 120
    with Session(engine) as session:
        [bikes_month] = gather_statements(session, OCTOBER, POLICY)
    assert bikes_month.nonplan is not None
    assert (bikes_month.nonplan.requests, bikes_month.nonplan.charged_minutes) == (2, 240)
    assert bikes_month.nonplan.amount_due_cents == 34000
    assert (bikes_month.nonplan.work_minutes, bikes_month.nonplan.plan_blocks) == (120, 1)
    text = render_documents(bikes_month, POLICY, "Support <support@example.test>").text
    assert "Amount due: GBP 340.00 (at GBP 85.00 per hour)" in text
    assert "would have used 1 block(s) of 6:00: GBP 510.00" in text
    assert "Charged to 2026-10-31: 240 min (4:00)" in text


@pytest.mark.parametrize(
    ("zone", "utc", "month"),
    [
        ("Europe/London", "2026-03-31T23:30:00", StatementMonth(2026, 4)),  # BST: already 1 April
        ("Europe/London", "2026-03-31T22:30:00", StatementMonth(2026, 3)),  # 23:30 BST, still March
        ("Europe/London", "2026-10-31T23:30:00", StatementMonth(2026, 10)),  # GMT again since 25 October
        ("America/New_York", "2026-11-01T03:30:00", StatementMonth(2026, 10)),  # 23:30 EDT on 31 October
        ("America/New_York", "2026-12-01T04:30:00", StatementMonth(2026, 11)),  # 23:30 EST on 30 November
        ("Asia/Tokyo", "2026-10-31T16:00:00", StatementMonth(2026, 11)),  # 01:00 JST on 1 November
        ("Pacific/Auckland", "2026-09-30T11:30:00", StatementMonth(2026, 10)),  # NZDT began 27 September
    ],
)
def test_the_month_is_taken_in_the_consultancys_time_zone(
    engine: Engine, zone: str, utc: str, month: StatementMonth
) -> None:
    policy = replace(POLICY, timezone=zone)
    with db.transaction(engine) as session:
        acme = add_client(session, STAFF, "Acme Shop")
        buy_block(session, STAFF, acme, policy, minutes=360, ref=None, on=date(2026, 1, 1))
        charge(session, acme, 40, moment(utc), policy=policy)
    with Session(engine) as session:
        [inside] = gather_statements(session, month, policy)
        other = StatementMonth(month.year, month.month - 1) if month.month > 1 else StatementMonth(month.year, 12)
        [before] = gather_statements(session, other, policy)
    assert [item.charged for item in inside.lines] == [30]
    assert before.lines == ()
    assert (inside.opening, inside.closing) == (360, 330)


def test_gathering_costs_the_same_queries_for_three_clients_or_thirty(engine: Engine) -> None:
    def queries_for(count: int) -> int:
        with db.transaction(engine) as session:
            for n in range(count):
                owner = add_client(session, STAFF, f"Shop {count} {n}", emails=(f"a{n}@shop{count}.example",))
                buy_block(session, STAFF, owner, POLICY, minutes=360, ref=None, on=date(2026, 10, 1))
                charge(session, owner, 40, moment(f"2026-10-{n % 28 + 1:02d}T10:00:00"), subject=f"Item {n}")
        seen: list[str] = []

        def count_query(*args: object) -> None:
            seen.append(str(args[2]))

        sa.event.listen(engine, "before_cursor_execute", count_query)
        try:
            with Session(engine) as session:
                found = gather_statements(session, OCTOBER, POLICY)
        finally:
            sa.event.remove(engine, "before_cursor_execute", count_query)
        assert len(found) >= count
        return sum(1 for statement in seen if statement.startswith("SELECT"))

    assert queries_for(3) == queries_for(30) == 4


# --- sending -----------------------------------------------------------------------------------


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PSP_DATABASE_URL", raising=False)
    return tmp_path


def configure(workdir: Path, port: int) -> None:
    (workdir / "psp.toml").write_text(
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        'from = "Harbour Cart <support@harbourcart.example>"\n'
    )


def psp(db_url: str, *args: str) -> Result:
    return runner.invoke(app, ["--db", db_url, "--actor", STAFF, *args])


def october_for_acme(engine: Engine) -> None:
    with db.transaction(engine) as session:
        acme = add_client(session, STAFF, "Acme Shop", emails=("jane@acme-shop.example",))
        buy_block(session, STAFF, acme, POLICY, minutes=360, ref="INV-7", on=date(2026, 10, 1))
        charge(session, acme, 40, moment("2026-10-03T10:00:00"), subject='=HYPERLINK("x") in a subject')
        charge(session, acme, 20, moment("2026-10-05T10:00:00"), subject="Gift wrap bug", category=Category.MODULE_BUG)
        builders.client(session, "Mute Shop")  # PSP, an account, no address
        mute = session.exec(select(Client).where(Client.slug == "mute-shop")).one()
        buy_block(session, STAFF, mute, POLICY, minutes=360, ref=None, on=date(2026, 10, 2))


def attachment(message: EmailMessage, suffix: str) -> bytes:
    [part] = [p for p in message.iter_attachments() if (p.get_filename() or "").endswith(suffix)]
    content = part.get_content()
    return content if isinstance(content, bytes) else content.encode()


def test_statements_are_sent_once_with_both_bodies_and_both_attachments(
    db_url: str, engine: Engine, relay: SmtpServer, workdir: Path
) -> None:
    configure(workdir, relay.port)
    october_for_acme(engine)
    result = psp(db_url, "statements", "2026-10", "--send")
    assert result.exit_code == 0, result.output
    summary = "acme-shop 2026-10: opening 0, charged 30, credited 360, closing 330 min"
    assert f"{summary}: sent (to jane@acme-shop.example)" in result.output
    assert "mute-shop 2026-10: opening 0, charged 0, credited 360, closing 360 min: no address" in result.output
    [(recipients, message)] = relay.inbox.messages
    assert recipients == ("jane@acme-shop.example",)
    assert message["Subject"] == "Support statement for October 2026: Acme Shop"
    assert (message["Auto-Submitted"], message["X-PSP-Notice"]) == ("auto-generated", "statement")
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Closing balance on 2026-10-31: 330 min (5:30)" in text
    assert "No charge: 2026-10-05 Gift wrap bug (module-bug, 15 min)" in text
    assert "Contact time we did not charge this month: 30 min (0:30)" in text
    assert "=HYPERLINK(&#34;x&#34;) in a subject" in html or "=HYPERLINK(&quot;x&quot;) in a subject" in html
    rows = list(csv.reader(io.StringIO(attachment(message, ".csv").decode())))
    assert rows[0] == ["date", "kind", "channel", "issue", "category", "minutes_charged", "balance_minutes"]
    assert rows[1] == ["2026-10-01", "opening", "", "Opening balance", "", "0", "0"]
    assert rows[3] == ["2026-10-03", "charge", "email", '\'=HYPERLINK("x") in a subject', "billable", "30", "330"]
    assert rows[-1] == ["2026-10-31", "closing", "", "Closing balance", "", "0", "330"]
    pdf = pypdf.PdfReader(io.BytesIO(attachment(message, ".pdf")))
    pdf_words = " ".join(page.extract_text() for page in pdf.pages)
    for expected in ("Support statement for October 2026", "Acme Shop", "Closing balance on 2026-10-31: 330 min"):
        assert expected in pdf_words
    assert "2026-10-05 email Gift wrap bug module-bug no charge 330" in pdf_words

    with Session(engine) as session:
        snapshot = session.exec(select(Statement)).one()
        mail = session.get(OutgoingMail, snapshot.outgoing_mail_id)
    assert (snapshot.month, snapshot.version, snapshot.opening_minutes, snapshot.closing_minutes) == (
        "2026-10",
        1,
        0,
        330,
    )
    assert mail is not None
    assert (mail.status, mail.message_id) == ("sent", message["Message-ID"].strip())
    digest = hashlib.sha256()
    for part in (snapshot.text_body.encode(), snapshot.html_body.encode(), snapshot.csv_attachment.encode()):
        digest.update(len(part).to_bytes(8, "big") + part)
    digest.update(len(snapshot.pdf_attachment).to_bytes(8, "big") + snapshot.pdf_attachment)
    assert snapshot.content_hash == digest.hexdigest()
    assert snapshot.text_body == text.replace("\r\n", "\n")

    again = psp(db_url, "statements", "2026-10", "--send")
    assert f"{summary}: already sent" in again.output
    assert len(relay.inbox.messages) == 1
    for change in ("UPDATE statement SET closing_minutes = 0", "DELETE FROM statement"):
        with pytest.raises(DBAPIError, match="a sent statement is frozen"), engine.begin() as connection:
            connection.execute(sa.text(change))
    resent = psp(db_url, "statements", "2026-10", "--send", "--resend", "--client", "acme-shop")
    assert resent.exit_code == 0, resent.output
    assert len(relay.inbox.messages) == 2
    with Session(engine) as session:
        versions = session.exec(select(Statement.version).order_by(Statement.version)).all()
    assert versions == [1, 2]


def test_a_refusing_relay_is_reported_and_a_down_relay_leaves_the_mail_for_the_next_run(
    db_url: str, engine: Engine, relay: SmtpServer, workdir: Path
) -> None:
    october_for_acme(engine)
    configure(workdir, relay.port)
    relay.inbox.reply = "550 5.7.1 Relaying denied"
    refused = psp(db_url, "statements", "2026-10", "--send", "--client", "acme-shop")
    assert refused.exit_code == 0, refused.output
    assert refused.output.strip().endswith("closing 330 min: failed (550 5.7.1 Relaying denied)")
    assert relay.inbox.messages == []

    configure(workdir, free_port())  # the relay is down
    down = psp(db_url, "statements", "2026-10", "--send", "--resend", "--client", "acme-shop")
    assert down.exit_code == 0, down.output
    assert "closing 330 min: pending (will retry: 127.0.0.1:" in down.output
    with Session(engine) as session:
        mails = session.exec(select(OutgoingMail.status, OutgoingMail.sent_at).order_by(OutgoingMail.id)).all()
        versions = session.exec(select(Statement.version).order_by(Statement.version)).all()
    assert mails == [("failed", None), ("pending", None)]
    assert versions == [1, 2]

    relay.inbox.reply = "250 OK"
    configure(workdir, relay.port)
    later = psp(db_url, "statements", "2026-10", "--send", "--client", "acme-shop")
    assert "closing 330 min: already sent" in later.output  # recorded before; its mail goes out now
    [(_, message)] = relay.inbox.messages
    assert message["Subject"] == "Support statement for October 2026: Acme Shop"
    with Session(engine) as session:
        assert session.exec(select(OutgoingMail.status).order_by(OutgoingMail.id)).all() == ["failed", "sent"]


def test_files_are_written_and_bad_input_is_one_error_line(db_url: str, engine: Engine, workdir: Path) -> None:
    october_for_acme(engine)
    result = psp(db_url, "statements", "2026-10", "--out", "statements")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (workdir / "statements").iterdir())
    assert names == [
        f"statement-{slug}-2026-10.{ext}"
        for slug in ("acme-shop", "mute-shop")
        for ext in ("csv", "html", "pdf", "txt")
    ]
    assert (workdir / "statements" / "statement-acme-shop-2026-10.pdf").read_bytes().startswith(b"%PDF-")
    with Session(engine) as session:
        assert session.exec(select(Statement)).all() == []  # written, not sent: nothing frozen
    for args, message in (
        (("statements", "2026-13"), "error: bad month '2026-13': use YYYY-MM"),
        (("statements", "2026-10", "--client", "nobody"), "error: no client 'nobody'"),
        (("statements", "2026-10", "--resend"), "error: "),
    ):
        bad = psp(db_url, *args)
        assert bad.exit_code != 0
        assert bad.stderr.startswith(message), bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1


def test_a_statement_that_does_not_reconcile_is_refused_and_nothing_is_sent(
    db_url: str, engine: Engine, relay: SmtpServer, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(workdir, relay.port)
    october_for_acme(engine)
    real = ledger.statements._opening_and_closing

    def off_by_five(*args: object) -> dict[int, tuple[int, int, bool]]:
        return {client: (opening, closing + 5, seen) for client, (opening, closing, seen) in real(*args).items()}  # type: ignore[arg-type]

    monkeypatch.setattr(ledger.statements, "_opening_and_closing", off_by_five)
    result = psp(db_url, "statements", "2026-10", "--send")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: statement for acme-shop 2026-10 does not reconcile: opening 0 min +330 min of items = 330 min, "
        "but the closing balance is 335 min (+5 min unexplained)"
    )
    assert relay.inbox.messages == []
    with Session(engine) as session:
        assert session.exec(select(Statement)).all() == []
        assert session.exec(select(OutgoingMail)).all() == []


def test_mail_content_in_html_is_escaped_text() -> None:
    acme = Client(id=1, slug="acme-shop", name="Acme <b>Shop</b>")
    hostile = replace(line(3, 30, 330), subject="<script>alert(1)</script>")
    documents = render_documents(build_statement(acme, (), OCTOBER, 360, 330, [hostile], POLICY), POLICY, "Us <us@x>")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in documents.html
    assert "<script>" not in documents.html
    assert "Dear Acme &lt;b&gt;Shop&lt;/b&gt;," in documents.html
    assert "<script>alert(1)</script>" in documents.text  # the text part is plain text
