"""noise_reason: automated mail is recognised, and names the header or part that decided; people's mail is not."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from ingest.noise import noise_reason
from ingest.parsing import parse_message
from psp.own_mail import NOTICE_HEADER

LABELLED = Path(__file__).parent / "data" / "labelled"

PERSON = """From: Jane Whitfield <jane@acme-shop.example>
To: support@harbourcart.example
Subject: Checkout broken
Date: Mon, 12 Jan 2026 08:47:03 +0000
Message-ID: <a1@acme-shop.example>
{headers}
Hi Anna, the checkout page is blank.
"""


def reason(headers: str = "") -> str | None:
    """The noise reason of a person's message with `headers` added above the body."""
    text = PERSON.format(headers=headers + "\n" if headers else "\n")
    return noise_reason(parse_message(text.encode("utf-8")))


def test_a_person_writing_is_not_noise() -> None:
    assert reason() is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ("X-PSP-Notice: renewal", "our own notice (X-PSP-Notice header)"),
        ("Auto-Submitted: auto-replied", "Auto-Submitted: auto-replied"),
        ("Auto-Submitted: auto-generated (warning-timeout)", "Auto-Submitted: auto-generated"),
        ("Auto-Submitted: Auto-Notified", "Auto-Submitted: auto-notified"),
        ("X-Autoreply: yes", "X-Autoreply: yes"),
        ("X-Autorespond: Absence du bureau", "X-Autorespond: Absence du bureau"),
        ("X-Apple-Action: VACATION", "X-Apple-Action: vacation"),
        ("X-Auto-Response-Suppress: All", "X-Auto-Response-Suppress: All"),
        ("X-Auto-Response-Suppress: DR, RN, OOF, AutoReply", "X-Auto-Response-Suppress: DR, RN, OOF, AutoReply"),
        ("Precedence: bulk", "Precedence: bulk"),
        ("Precedence: JUNK", "Precedence: junk"),
        ("Precedence: list", "Precedence: list"),
        ("Precedence: auto_reply", "Precedence: auto_reply"),
        ("List-Id: Shop news <news.example.com>", "List-Id: Shop news <news.example.com>"),
        ("List-Unsubscribe: <mailto:leave@example.com>", "List-Unsubscribe: <mailto:leave@example.com>"),
        ("Return-Path: <>", "Return-Path: <> (null sender of bounces and auto-replies)"),
    ],
)
def test_each_header_rule_names_the_header(headers: str, expected: str) -> None:
    assert reason(headers) == expected


@pytest.mark.parametrize(
    "headers",
    [
        "Auto-Submitted: no",
        "Auto-Submitted:",
        "X-Autoreply: no",
        "X-Auto-Response-Suppress: None",
        "X-Auto-Response-Suppress: DR, NDR, RN, NRN",
        "Precedence: first-class",
        "Return-Path: <jane@acme-shop.example>",
        "X-Apple-Action: reply",
        "X-Spam-Flag: YES",
    ],
)
def test_headers_that_do_not_mean_automated(headers: str) -> None:
    assert reason(headers) is None


def test_our_own_notices_are_noise_and_other_tools_notices_are_not() -> None:
    assert reason(f"{NOTICE_HEADER}: statement") == f"our own notice ({NOTICE_HEADER} header)"
    assert reason("X-Harbour-Notice: statement") is None


@pytest.mark.parametrize(
    "sender",
    ["MAILER-DAEMON@mx.example.com", "Mail Delivery System <mailer-daemon@mx.example.com>", "postmaster@example.com"],
)
def test_bounce_senders(sender: str) -> None:
    raw = f"From: {sender}\nSubject: Undeliverable\n\nThe mail could not be delivered.\n".encode()
    assert noise_reason(parse_message(raw)) == f"sender {sender.split('<')[-1].rstrip('>').lower()} (bounce)"


DSN = b"""From: MAIL DELIVERY SYSTEM <daemon@mx.example.com>
Subject: Undelivered Mail
Content-Type: multipart/report; report-type=delivery-status; boundary="r"

--r
Content-Type: text/plain

Your message could not be delivered.
--r
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com

Final-Recipient: rfc822; nobody@example.com
Action: failed
Status: 5.1.1
--r--
"""


def test_a_delivery_status_report_is_noise() -> None:
    assert noise_reason(parse_message(DSN)) == (
        "delivery-status report (bounce or delay warning): multipart/report; report-type=delivery-status"
    )


@pytest.mark.parametrize(
    ("report_type", "part", "expected"),
    [
        ("disposition-notification", "message/disposition-notification", "read receipt (disposition notification)"),
        ("feedback-report", "message/feedback-report", "abuse feedback report (ARF)"),
    ],
)
def test_read_receipts_and_abuse_reports_are_noise(report_type: str, part: str, expected: str) -> None:
    kind = report_type.encode()
    raw = DSN.replace(b"delivery-status", kind).replace(b"message/" + kind, part.encode())
    assert noise_reason(parse_message(raw)) == f"{expected}: multipart/report; report-type={report_type}"


def test_a_report_part_without_multipart_report_is_noise() -> None:
    raw = b"Content-Type: message/delivery-status\nMIME-Version: 1.0\n\nReporting-Mta: dns; a.example\n"
    assert noise_reason(parse_message(raw)) == (
        "delivery-status report (bounce or delay warning): message/delivery-status part"
    )


def test_a_bounce_forwarded_by_a_client_is_not_noise() -> None:
    """The client asks why their mail bounced: the report is inside the attached message, not ours."""
    raw = (
        b"From: Jane <jane@acme-shop.example>\nSubject: Fwd: why does this bounce?\n"
        b'Content-Type: multipart/mixed; boundary="outer"\n\n'
        b"--outer\nContent-Type: text/plain\n\nOur order confirmations bounce, see attached.\n"
        b"--outer\nContent-Type: message/rfc822\n\n" + DSN + b"\n--outer--\n"
    )
    parsed = parse_message(raw)
    assert noise_reason(parsed) is None
    assert parsed.new_text == "Our order confirmations bounce, see attached."


def test_a_calendar_reply_is_noise_and_an_invitation_is_not() -> None:
    template = (
        "From: Tom <tom@bluebellteas.example>\nSubject: {subject}\n"
        'Content-Type: multipart/mixed; boundary="c"\n\n'
        "--c\nContent-Type: text/plain\n\n{text}\n"
        "--c\nContent-Type: text/calendar; method={method}; charset=UTF-8\n\n"
        "BEGIN:VCALENDAR\nMETHOD:{method}\nEND:VCALENDAR\n--c--\n"
    )
    accepted = template.format(subject="Accepted: spec walkthrough", text="Tom has accepted.", method="REPLY")
    invitation = template.format(subject="Invitation: spec walkthrough", text="Agenda below.", method="REQUEST")
    assert noise_reason(parse_message(accepted.encode())) == "calendar reply (text/calendar METHOD:REPLY)"
    assert noise_reason(parse_message(invitation.encode())) is None


@pytest.mark.parametrize(
    "headers",
    [
        "Auto-Submitted: " + "x" * 5000,
        "List-Id: " + "<" + "y" * 5000 + ">",
        "X-Autorespond: " + "z " * 3000,
        "X-Auto-Response-Suppress: All, " + "DR, " * 2000,
    ],
)
def test_reasons_stay_short_however_long_the_header(headers: str) -> None:
    found = reason(headers)
    assert found is not None
    assert len(found) <= 100


def test_rules_are_tried_in_order_and_the_first_one_names_itself() -> None:
    assert reason("Precedence: bulk\nAuto-Submitted: auto-generated\nX-PSP-Notice: statement") == (
        "our own notice (X-PSP-Notice header)"
    )
    assert reason("Precedence: bulk\nAuto-Submitted: auto-generated") == "Auto-Submitted: auto-generated"


# --- the labelled support mail --------------------------------------------------------------------

# Labelled `ignored` because of what a person wrote (spam, a thank-you that asks for nothing): the
# classifier's business. Noise rules must stay silent on them, like on every other human message.
HUMAN_IGNORED = {
    "001-spam-seo-offer-fake-reply.eml": "spam",
    "006-acme-opc-thanks.eml": "thank-you",
    "066-nordicknits-quick-reorder-tack.eml": "thank-you",
    "072-cornerbikes-thanks.eml": "thank-you",
    "082-spam-phishing-mailbox-full.eml": "spam (X-Spam-Flag is not a noise rule)",
    "101-spam-german-domain-directory-invoice.eml": "spam",
}


def _labels() -> list[tuple[str, str]]:
    with (LABELLED / "labels.tsv").open(encoding="utf-8") as handle:
        return [(row["file"], row["category"]) for row in csv.DictReader(handle, delimiter="\t")]


@pytest.mark.parametrize(("name", "category"), _labels())
def test_labelled_mail(name: str, category: str) -> None:
    found = noise_reason(parse_message((LABELLED / name).read_bytes()))
    if category == "ignored" and name not in HUMAN_IGNORED:
        assert found is not None, f"{name} is automated mail and needs a noise reason"
    else:
        assert found is None, f"{name} was written by a person ({category}) but got: {found}"


def test_the_human_ignored_list_names_real_ignored_files() -> None:
    ignored = {name for name, category in _labels() if category == "ignored"}
    assert set(HUMAN_IGNORED) <= ignored
    assert len(ignored - set(HUMAN_IGNORED)) == 14


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("021-", "calendar reply (text/calendar METHOD:REPLY)"),
        ("032-", "read receipt (disposition notification): multipart/report; report-type=disposition-notification"),
        ("086-", "X-Autoreply: yes"),
        ("094-", "X-Autoreply: yes"),
        ("109-", "delivery-status report (bounce or delay warning): multipart/report; report-type=delivery-status"),
        ("112-", "Precedence: bulk"),
    ],
)
def test_labelled_reasons_name_what_decided(prefix: str, expected: str) -> None:
    path = next(LABELLED.glob(f"{prefix}*.eml"))
    assert noise_reason(parse_message(path.read_bytes())) == expected
