"""Renewal notices through a real SMTP server on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from ledger.clients import add_client
from ledger.models import Client
from ledger.posting import approve, buy_block
from notify.errors import PermanentMailError, TransientMailError
from notify.mailer import OutboxMailer, SmtpMailer, build_message, wire_bytes
from notify.models import OutgoingMail, RenewalNotice
from notify.outbox import deliver_pending
from notify.renewals import (
    DueNotice,
    RecentItem,
    compose_notice,
    record_notice,
    renewals_due,
    run_out_date,
    thresholds_crossed,
)
from psp import db
from psp.config import Policy, Settings, Smtp, Staff
from tests import builders
from tests.builders import STAFF
from tests.servers.smtp import SmtpServer, free_port

TODAY = date(2026, 11, 20)
SETTINGS = Settings(
    policy=Policy(renewal_thresholds=(120, 60, 0)),
    staff=Staff(addresses=("anna@harbourcart.example",)),
    smtp=Smtp(host="127.0.0.1", security="none", sender="Harbour Cart Support <support@harbourcart.example>"),
)


def settings_for(relay: SmtpServer) -> Settings:
    return replace(SETTINGS, smtp=replace(SETTINGS.smtp, port=relay.port))


def spend(engine: Engine, minutes: int, day: date = TODAY) -> Client:
    """Acme Shop with a 360-minute block, then one approved charge of `minutes`."""
    with db.transaction(engine) as session:
        acme = session.exec(select(Client).where(Client.slug == "acme-shop")).first()
        if acme is None:
            acme = add_client(session, STAFF, "Acme Shop", emails=("jane@acme-shop.example",))
            buy_block(session, STAFF, acme, SETTINGS.policy, minutes=360, ref=None, on=day - timedelta(days=30))
        p = builders.proposal(session, acme, minutes, subject=f"Work {minutes}", on=day)
        approve(session, STAFF, p.id or 0, SETTINGS.policy)
    return acme


def run_renewals(engine: Engine, settings: Settings, today: date = TODAY) -> list[str]:
    with db.transaction(engine) as session:
        for notice in renewals_due(session, settings, today):
            record_notice(session, notice, settings)
    mailer = SmtpMailer(settings.smtp) if settings.smtp.host else OutboxMailer(Path("unused"))
    return [d.status for d in deliver_pending(engine, mailer, pause_seconds=0)]


def test_thresholds_and_forecast_are_pure() -> None:
    assert thresholds_crossed(50, (120, 60, 0), ()) == [60, 120]
    assert thresholds_crossed(50, (120, 60, 0), (120,)) == [60]
    assert thresholds_crossed(200, (120, 60), ()) == []
    assert run_out_date(90, charged_in_window=270, window_days=90, today=TODAY) == TODAY + timedelta(days=30)
    assert run_out_date(90, charged_in_window=0, window_days=90, today=TODAY) is None
    assert run_out_date(-5, charged_in_window=10, window_days=90, today=TODAY) == TODAY


def test_a_notice_arrives_once_with_both_parts_and_the_numbers(engine: Engine, relay: SmtpServer) -> None:
    settings = settings_for(relay)
    spend(engine, 250)  # balance 110: crosses 120
    assert run_renewals(engine, settings) == ["sent"]
    assert run_renewals(engine, settings) == []  # running again sends nothing new
    [(recipients, message)] = relay.inbox.messages
    assert set(recipients) == {"jane@acme-shop.example", "anna@harbourcart.example"}
    assert message["Subject"].startswith("Your support balance: 110 minutes left")
    assert (message["Auto-Submitted"], message["X-PSP-Notice"]) == ("auto-generated", "renewal")
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "balance is now 110 minutes (1:50)" in text
    assert "<strong>110 minutes (1:50)</strong>" in html
    assert f"{TODAY.isoformat()}  Work 250  250 min" in text
    assert "run out around 2026-12-30" in text  # 250 min in 90 days; 110 left → 40 days
    with Session(engine) as session:
        mail = session.exec(select(OutgoingMail)).one()
        assert (mail.status, mail.message_id) == ("sent", message["Message-ID"].strip())


def test_one_notice_per_threshold_per_block_and_a_new_block_rearms(engine: Engine, relay: SmtpServer) -> None:
    settings = settings_for(relay)
    spend(engine, 250)
    run_renewals(engine, settings)
    spend(engine, 100)  # balance 10: crosses 60 (120 already noticed)
    assert run_renewals(engine, settings) == ["sent"]
    with Session(engine) as session:
        thresholds = sorted(session.exec(select(RenewalNotice.threshold)).all())
        acme = session.exec(select(Client)).one()
    assert thresholds == [60, 120]
    with db.transaction(engine) as session:
        buy_block(session, STAFF, acme, SETTINGS.policy, minutes=100, ref=None, on=TODAY)  # balance 110 again
    assert run_renewals(engine, settings) == ["sent"]
    assert len(relay.inbox.messages) == 3


def test_a_relay_that_refuses_is_recorded_and_nothing_is_marked_sent(engine: Engine, relay: SmtpServer) -> None:
    settings = settings_for(relay)
    spend(engine, 250)
    relay.inbox.reply = "550 5.7.1 Relaying denied"
    assert run_renewals(engine, settings) == ["failed"]
    with Session(engine) as session:
        mail = session.exec(select(OutgoingMail)).one()
    assert (mail.status, mail.sent_at) == ("failed", None)
    assert mail.last_error == "550 5.7.1 Relaying denied"
    assert relay.inbox.messages == []


def test_a_deferring_relay_is_retried_then_the_mail_waits_for_the_next_run(engine: Engine, relay: SmtpServer) -> None:
    settings = settings_for(relay)
    spend(engine, 250)
    relay.inbox.reply = "451 4.3.0 Try again later"
    assert run_renewals(engine, settings) == ["pending"]
    with Session(engine) as session:
        mail = session.exec(select(OutgoingMail)).one()
    assert mail.attempts == 1
    assert mail.last_error is not None
    assert "451" in mail.last_error
    relay.inbox.reply = "250 OK"
    assert run_renewals(engine, settings) == ["sent"]
    assert len(relay.inbox.messages) == 1


def test_a_relay_that_is_down_keeps_the_mail_pending(engine: Engine) -> None:
    settings = replace(SETTINGS, smtp=replace(SETTINGS.smtp, port=free_port()))
    spend(engine, 250)
    assert run_renewals(engine, settings) == ["pending"]
    with Session(engine) as session:
        mail = session.exec(select(OutgoingMail)).one()
    assert mail.status == "pending"
    assert "Connection refused" in (mail.last_error or "")


def test_without_a_relay_messages_go_to_the_outbox(engine: Engine, tmp_path: Path) -> None:
    spend(engine, 250)
    with db.transaction(engine) as session:
        for notice in renewals_due(session, SETTINGS, TODAY):
            record_notice(session, notice, SETTINGS)
    [delivery] = deliver_pending(engine, OutboxMailer(tmp_path / "outbox"))
    assert delivery.status == "sent"
    [written] = list((tmp_path / "outbox").glob("*.eml"))
    assert b"Auto-Submitted: auto-generated" in written.read_bytes()


def hostile_notice() -> DueNotice:
    """A notice whose client name and item subject are markup, as mail subjects can be."""
    return DueNotice(
        client_id=1,
        slug="acme",
        name="Acme <img src=x onerror=alert(1)>",
        block_id=1,
        balance=50,
        pending=0,
        thresholds=(60,),
        contacts=("jane@acme.example",),
        recent=(RecentItem(TODAY, "<script>alert(1)</script>", 30),),
        run_out=None,
    )


def test_the_html_part_shows_client_text_escaped() -> None:
    notice = hostile_notice()
    composed = compose_notice(notice, SETTINGS)
    assert "<script>" not in composed.html
    assert "<img" not in composed.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in composed.html
    assert "<script>alert(1)</script>" in composed.text


SECURE_USER, SECURE_PASSWORD = "psp@harbourcart.example", "relay-secret"


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_a_relay_over_tls_with_a_login_accepts_the_notice(
    security: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = SmtpServer(security, {SECURE_USER: SECURE_PASSWORD}, tmp_path)
    server.start()
    try:
        monkeypatch.setenv("PSP_SMTP_PASSWORD", SECURE_PASSWORD)
        config = replace(
            SETTINGS.smtp, port=server.port, security=security, user=SECURE_USER, cafile=server.cafile or ""
        )
        message = build_message(compose_notice(hostile_notice(), SETTINGS), config.sender)
        SmtpMailer(config).send(wire_bytes(message))
        assert server.inbox.logins == [SECURE_USER]
        [(recipients, received)] = server.inbox.messages
        assert recipients == ("jane@acme.example", "anna@harbourcart.example")
        assert received["Message-ID"].strip() == message["Message-ID"]
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("server_security", "client_security", "password", "error", "expected"),
    [
        ("starttls", "starttls", "wrong", PermanentMailError, "535"),  # bad login: not retried
        ("starttls", "none", SECURE_PASSWORD, PermanentMailError, "SMTP AUTH extension not supported"),  # TLS first
        ("none", "starttls", SECURE_PASSWORD, PermanentMailError, "STARTTLS extension not supported"),
        ("ssl", "ssl", None, PermanentMailError, "set the password in $PSP_SMTP_PASSWORD"),
    ],
)
def test_a_relay_that_cannot_be_used_safely_gets_nothing(
    server_security: str,
    client_security: str,
    password: str | None,
    error: type[Exception],
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A wrong password, a relay demanding TLS, no STARTTLS on offer (never a plaintext fallback)."""
    server = SmtpServer(server_security, {SECURE_USER: SECURE_PASSWORD}, tmp_path)
    server.start()
    try:
        if password is None:
            monkeypatch.delenv("PSP_SMTP_PASSWORD", raising=False)
        else:
            monkeypatch.setenv("PSP_SMTP_PASSWORD", password)
        config = replace(
            SETTINGS.smtp, port=server.port, security=client_security, user=SECURE_USER, cafile=server.cafile or ""
        )
        message = build_message(compose_notice(hostile_notice(), SETTINGS), config.sender)
        with pytest.raises(error, match=re.escape(expected)):
            SmtpMailer(config).send(wire_bytes(message))
        assert server.inbox.messages == []
    finally:
        server.stop()


def test_a_relay_whose_certificate_is_not_trusted_gets_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = SmtpServer("ssl", {SECURE_USER: SECURE_PASSWORD}, tmp_path)
    server.start()
    try:
        monkeypatch.setenv("PSP_SMTP_PASSWORD", SECURE_PASSWORD)
        config = replace(SETTINGS.smtp, port=server.port, security="ssl", user=SECURE_USER, cafile="")
        message = build_message(compose_notice(hostile_notice(), SETTINGS), config.sender)
        with pytest.raises(TransientMailError, match="CERTIFICATE_VERIFY_FAILED"):
            SmtpMailer(config).send(wire_bytes(message))
        assert server.inbox.messages == []
    finally:
        server.stop()
