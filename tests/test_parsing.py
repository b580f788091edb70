"""parse_message: the typed value made from raw mail, written as the RFC 822 text it comes from."""

from __future__ import annotations

import csv
import dataclasses
import email
import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mailparser.exceptions import MailParserError
from mailparser.utils import get_addresses

import ingest.parsing
from ingest.errors import IngestError, NotAnEmail
from ingest.parsing import Attachment, AuthVerdict, ParsedEmail, content_hash, parse_message
from psp.errors import PspError

LABELLED = Path(__file__).parent / "data" / "labelled"


def mail(text: str, *, crlf: bool = False) -> bytes:
    """A message written as text, with LF (or CRLF) line ends, the way it arrives."""
    raw = text.lstrip("\n").encode("utf-8")
    return raw.replace(b"\n", b"\r\n") if crlf else raw


REPLY = mail(
    """
Return-Path: <jane@acme-shop.example>
Received: from mx.acme-shop.example by mx1.harbourcart.example; Mon, 12 Jan 2026 08:47:05 +0000
Received: from laptop by mx.acme-shop.example; Mon, 12 Jan 2026 08:47:04 +0000
Authentication-Results: mx1.harbourcart.example;
 dkim=pass (2048-bit key) header.d=acme-shop.example header.s=sel;
 spf=pass (sender IP is 192.0.2.10) smtp.mailfrom=jane@Acme-Shop.example;
 dmarc=pass (p=quarantine) header.from=acme-shop.example
From: "Whitfield, Jane" <Jane@Acme-Shop.example>
To: Anna Price <anna@harbourcart.example>, support@HARBOURCART.example
Cc: anna@harbourcart.example, Ben <ben@harbourcart.example>
Reply-To: Orders <Orders@acme-shop.example>
Subject: =?utf-8?q?Re=3A_Caf=C3=A9?= checkout
 broken
Date: Mon, 12 Jan 2026 09:47:03 +0100
Message-ID: <CAB+1234@mail.acme-shop.example>
In-Reply-To: <first@harbourcart.example>
References: <root@acme-shop.example>
 <first@harbourcart.example>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Hi Anna,

It is still broken.

On 12/01/2026 08:40, Anna Price wrote:
> Could you try again?

--
Jane
"""
)


def test_a_reply_becomes_typed_fields() -> None:
    parsed = parse_message(REPLY)

    assert parsed.message_id == "CAB+1234@mail.acme-shop.example"
    assert not parsed.message_id_synthetic
    assert parsed.sender == "jane@acme-shop.example"
    assert parsed.sender_name == "Whitfield, Jane"
    assert parsed.recipients == ("anna@harbourcart.example", "support@harbourcart.example", "ben@harbourcart.example")
    assert parsed.reply_to == "orders@acme-shop.example"
    assert parsed.subject == "Re: Café checkout broken"
    assert parsed.date == datetime(2026, 1, 12, 8, 47, 3, tzinfo=UTC)
    assert parsed.date_problem is None
    assert parsed.in_reply_to == ("first@harbourcart.example",)
    assert parsed.references == ("root@acme-shop.example", "first@harbourcart.example")
    assert parsed.text == (
        "Hi Anna,\n\nIt is still broken.\n\nOn 12/01/2026 08:40, Anna Price wrote:\n> Could you try again?\n\n--\nJane"
    )
    assert parsed.new_text == "Hi Anna,\n\nIt is still broken."
    assert parsed.attachments == ()
    assert parsed.defects == ()
    assert parsed.size == len(REPLY)
    assert parsed.content_types == ("text/plain",)


def test_headers_are_lower_case_names_with_decoded_one_line_values() -> None:
    parsed = parse_message(REPLY)

    assert parsed.headers["subject"] == ("Re: Café checkout broken",)
    assert len(parsed.headers["received"]) == 2
    assert parsed.header("REFERENCES") == "<root@acme-shop.example> <first@harbourcart.example>"
    assert parsed.header("X-Not-There") is None
    with pytest.raises(TypeError):
        parsed.headers["subject"] = ("changed",)  # type: ignore[index]


def test_the_value_is_frozen() -> None:
    parsed = parse_message(REPLY)
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.subject = "changed"  # type: ignore[misc]


def test_authentication_results_give_one_verdict_per_method() -> None:
    assert parse_message(REPLY).auth_results == (
        AuthVerdict("mx1.harbourcart.example", "dkim", "pass", "acme-shop.example"),
        AuthVerdict("mx1.harbourcart.example", "spf", "pass", "acme-shop.example"),
        AuthVerdict("mx1.harbourcart.example", "dmarc", "pass", "acme-shop.example"),
    )


def test_authentication_results_with_none_version_and_quoted_comment() -> None:
    raw = mail(
        """
Authentication-Results: mx.example.net 1; spf=softfail (a "quoted; (comment)") smtp.helo=Relay.example;
 dkim=none; arc=none
Authentication-Results: other.example; none
From: a@example.com

x
"""
    )
    assert parse_message(raw).auth_results == (
        AuthVerdict("mx.example.net", "spf", "softfail", "relay.example"),
        AuthVerdict("mx.example.net", "dkim", "none", None),
        AuthVerdict("mx.example.net", "arc", "none", None),
    )


def test_missing_message_id_gets_a_stable_synthetic_one() -> None:
    raw = mail("From: a@example.com\nSubject: no id\n\nbody\n")
    parsed = parse_message(raw)

    assert parsed.message_id_synthetic
    assert parsed.message_id == f"{parsed.content_hash[:32]}@synthetic.psp.invalid"
    assert parse_message(raw).message_id == parsed.message_id
    assert (
        parse_message(mail("From: a@example.com\nSubject: no id\n\nbody\n", crlf=True)).message_id == parsed.message_id
    )
    assert parse_message(mail("From: a@example.com\nSubject: no id\n\nother\n")).message_id != parsed.message_id


@pytest.mark.parametrize("value", ["", "<>", "   "])
def test_empty_message_id_counts_as_missing(value: str) -> None:
    parsed = parse_message(mail(f"From: a@example.com\nMessage-ID: {value}\n\nbody\n"))
    assert parsed.message_id_synthetic


@pytest.mark.parametrize(
    ("value", "expected"),
    [("12223", "12223"), ("<a@b@c.example>", "a@b@c.example"), ("< spaced@x.example >", "spaced@x.example")],
)
def test_message_id_forms_found_in_the_wild(value: str, expected: str) -> None:
    assert parse_message(mail(f"From: a@example.com\nMessage-ID: {value}\n\nbody\n")).message_id == expected


def test_content_hash_ignores_line_ends_and_trailing_blanks_only() -> None:
    lf = mail("From: a@example.com\nSubject: x\n\nline one\nline two\n")
    crlf = lf.replace(b"\n", b"\r\n")
    cr = lf.replace(b"\n", b"\r")
    padded = lf.replace(b"line one\n", b"line one  \t\n")
    other = lf.replace(b"two", b"2")

    assert content_hash(lf) == hashlib.sha256(lf).hexdigest()
    assert content_hash(lf) == content_hash(crlf) == content_hash(cr) == content_hash(padded)
    assert content_hash(lf) != content_hash(other)
    assert parse_message(crlf).content_hash == content_hash(lf)


@pytest.mark.parametrize(
    ("header", "expected", "problem"),
    [
        ("Date: Tue, 06 Jun 2017 07:39:33 -0700\n", datetime(2017, 6, 6, 14, 39, 33, tzinfo=UTC), None),
        ("Date: 6 Jun 2017 07:39:33 -0000\n", datetime(2017, 6, 6, 7, 39, 33, tzinfo=UTC), None),
        ("", None, "no Date header"),
        ("Date:\n", None, "empty Date header"),
        ("Date: Tue, 06 Jun 2017 27:39:33 +0600\n", None, "unparseable Date header"),
        ("Date: Pn, 29 paX 2007 19:10:01 +0100\n", None, "unparseable Date header"),
        ("Date: Mon, 30 Jun 3609 10:12:34 +0300\n", None, "implausible Date header"),
    ],
)
def test_date_is_utc_or_none_with_the_problem(header: str, expected: datetime | None, problem: str | None) -> None:
    parsed = parse_message(mail(f"From: a@example.com\n{header}Subject: d\n\nbody\n"))
    assert parsed.date == expected
    if problem is None:
        assert parsed.date_problem is None
    else:
        assert parsed.date_problem is not None
        assert parsed.date_problem.startswith(problem)


def test_an_encoded_display_name_with_a_comma_stays_one_sender() -> None:
    raw = mail("From: =?utf-8?b?Rm9vLCBCYXI=?= <foo.bar@example.com>\nTo: a@example.com\n\nhello\n")
    parsed = parse_message(raw)
    assert (parsed.sender, parsed.sender_name) == ("foo.bar@example.com", "Foo, Bar")


def test_a_display_name_that_looks_like_an_address_is_not_the_sender() -> None:
    parsed = parse_message(mail("From: alice@example.com <bob@example.com>\n\nhi\n"))
    assert (parsed.sender, parsed.sender_name) == ("bob@example.com", "alice@example.com")


def test_sender_header_is_used_when_from_has_no_address() -> None:
    parsed = parse_message(mail("From: undisclosed:;\nSender: Robot <Robot@Example.com>\n\nhi\n"))
    assert (parsed.sender, parsed.sender_name) == ("robot@example.com", "Robot")


def test_no_from_at_all_gives_no_sender() -> None:
    parsed = parse_message(mail("Subject: orphan\n\nhi\n"))
    assert (parsed.sender, parsed.sender_name, parsed.recipients) == (None, "", ())


_ATOM = st.text("abcXYZ019_%+-", min_size=1, max_size=6)
_PLAIN_ADDRESS = st.builds(
    "{}@{}".format,
    st.lists(_ATOM, min_size=1, max_size=3).map(".".join),
    st.lists(st.text("abz09-", min_size=1, max_size=6), min_size=1, max_size=3).map(".".join),
)
_PLAIN_NAME = st.text("abcXYZ09 .'-", max_size=20)
_PLAIN_ITEM = st.one_of(_PLAIN_ADDRESS, st.builds("{} <{}>".format, _PLAIN_NAME, _PLAIN_ADDRESS))


@settings(max_examples=400)
@given(st.lists(_PLAIN_ITEM, min_size=1, max_size=4), st.sampled_from([",", ", ", " ,\r\n "]))
def test_plain_address_headers_read_as_mail_parser_reads_them(items: list[str], separator: str) -> None:
    """Plain mailboxes skip mail-parser's scanner; the answer must be the one it would give."""
    value = separator.join(items)
    fast = ingest.parsing._plain_mailboxes(value)
    assert fast is not None
    problems: list[object] = []
    assert fast == ingest.parsing._mailboxes(get_addresses(value, defects=problems, decode_names=True))
    assert problems == []


@pytest.mark.parametrize(
    "value",
    [
        '"Smith, John" <j@example.com>',
        "=?utf-8?q?J=C3=B6rg?= <j@example.com>",
        "j@example.com (John)",
        "undisclosed-recipients:;",
        "Bob <a@example.com> Bobby <b@example.com>",
        "a..b@example.com",
        "a@example.com.",
        "",
    ],
)
def test_anything_but_plain_mailboxes_goes_to_mail_parser(value: str) -> None:
    assert ingest.parsing._plain_mailboxes(value) is None


def test_raw_eight_bit_headers_become_text_and_nul_is_dropped() -> None:
    raw = b"From: J\xf6rg <joerg@example.de>\nSubject: Gr\xfc\xdfe\nX-Note: a\x00b\n\nBody \x00with NUL\n"
    parsed = parse_message(raw)
    assert parsed.subject == "Grüße"
    assert parsed.sender_name == "Jörg"
    assert parsed.header("x-note") == "ab"
    assert "\x00" not in parsed.text
    for value in (parsed.subject, parsed.sender_name, parsed.text, *parsed.headers):
        value.encode("utf-8")  # no lone surrogates: any database accepts the value


def test_html_only_mail_becomes_text_with_breaks_and_quotes() -> None:
    raw = mail(
        """
From: shop@example.com
Content-Type: text/html; charset=utf-8

<html><head><title>Ignored title</title><style>p { color: red }</style></head>
<body><script>alert("x")</script><p>Hello&nbsp;Anna &amp; Ben,</p><p>The   checkout<br>is <b>broken</b>.</p>
<ul><li>one</li><li>two</li></ul>
<div>On Monday Anna wrote:</div><blockquote><p>Old question?</p></blockquote></body></html>
"""
    )
    parsed = parse_message(raw)
    assert parsed.text == (
        "Hello Anna & Ben,\n\nThe checkout\nis broken.\n\n- one\n- two\n\nOn Monday Anna wrote:\n\n> Old question?"
    )
    assert parsed.new_text == "Hello Anna & Ben,\n\nThe checkout\nis broken.\n\n- one\n- two"


def test_plain_text_wins_over_html_in_an_alternative() -> None:
    raw = mail(
        """
From: a@example.com
Content-Type: multipart/alternative; boundary="b"

--b
Content-Type: text/plain; charset=us-ascii

plain version
--b
Content-Type: text/html

<p>html version</p>
--b--
"""
    )
    assert parse_message(raw).text == "plain version"


def test_attachments_have_decoded_names_and_sizes() -> None:
    raw = mail(
        """
From: a@example.com
Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: text/plain

see attached
--b
Content-Type: text/plain; name="=?utf-8?q?m=C3=A4rz.log?="
Content-Disposition: attachment; filename="=?utf-8?q?m=C3=A4rz.log?="

line
--b
Content-Type: application/pdf
Content-Disposition: attachment; filename*=utf-8''Rechnung%20M%C3%A4rz.pdf
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--b
Content-Type: image/png
Content-ID: <img1>
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--b--
"""
    )
    parsed = parse_message(raw)
    assert parsed.text == "see attached"
    assert parsed.attachments == (
        Attachment("märz.log", "text/plain", 4),
        Attachment("Rechnung März.pdf", "application/pdf", 9),
        Attachment(None, "image/png", 8),
    )


def test_unnamed_attachments_get_no_invented_name() -> None:
    """mail-parser names an unnamed attachment with random letters; the same mail must parse the same."""
    raw = mail(
        """
From: a@example.com
Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: text/plain

body
--b
Content-Type: text/plain
Content-Disposition: attachment

data
--b--
"""
    )
    assert parse_message(raw).attachments == (Attachment(None, "text/plain", 4),)
    assert parse_message(raw) == parse_message(raw)


def test_an_attached_message_is_listed_and_its_text_follows_a_forward_marker() -> None:
    raw = mail(
        """
From: jane@acme-shop.example
Subject: Fwd: from my host
Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: text/plain

What does this mean?
--b
Content-Type: message/rfc822

From: Host <support@host.example>
Subject: PHP upgrade
Date: Sat, 10 Jan 2026 10:00:00 +0000
Content-Type: multipart/mixed; boundary="inner"

--inner
Content-Type: text/plain

We move you to PHP 8.2 on Monday.
--inner
Content-Type: application/pdf; name="notice.pdf"

%PDF
--inner--

--b--
"""
    )
    parsed = parse_message(raw)
    assert parsed.text == (
        "What does this mean?\n\n---------- Forwarded message ----------\n"
        "From: Host <support@host.example>\nDate: Sat, 10 Jan 2026 10:00:00 +0000\nSubject: PHP upgrade\n\n"
        "We move you to PHP 8.2 on Monday."
    )
    assert parsed.new_text == "What does this mean?"
    assert [attachment.content_type for attachment in parsed.attachments] == ["message/rfc822"]
    assert parsed.content_types == ("multipart/mixed", "text/plain", "message/rfc822")


def test_report_type_and_calendar_method_are_read_from_the_parts() -> None:
    report = mail(
        """
From: MAILER-DAEMON@mx.example
Content-Type: multipart/report; report-type=Delivery-Status; boundary="b"

--b
Content-Type: text/plain

failed
--b
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example

Final-Recipient: rfc822; x@example.com
Action: failed
--b--
"""
    )
    invite = mail(
        """
From: anna@harbourcart.example
Content-Type: text/calendar; charset=utf-8

BEGIN:VCALENDAR
METHOD:request
END:VCALENDAR
"""
    )
    parsed = parse_message(report)
    assert parsed.report_type == "delivery-status"
    assert parsed.content_types == ("multipart/report", "text/plain", "message/delivery-status")
    assert parse_message(invite).calendar_method == "REQUEST"


def test_broken_mime_parses_with_defects() -> None:
    raw = mail(
        """
From: a@example.com
Content-Type: multipart/alternative; boundary="never-used"

The body has no boundary at all.
"""
    )
    parsed = parse_message(raw)
    assert parsed.text == "The body has no boundary at all."
    assert "StartBoundaryNotFoundDefect" in parsed.defects
    assert list(parsed.defects) == sorted(parsed.defects)


def test_declared_charset_wrong_falls_back_to_utf8() -> None:
    raw = "From: a@example.com\nContent-Type: text/plain; charset=us-ascii\n\nÜmlaut ∑\n".encode()
    assert parse_message(raw).text == "Ümlaut ∑"


# --- what is and is not an email ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty"),
        (b"\r\n \n", "empty"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(200), "Outlook .msg"),
        (b"// Not an RFC-822 Document", "first line is not a header field"),
        (b"Hello Anna,\n\nplease call me.\n", "first line is not a header field"),
        (b"CAUTION: This email originated outside.\n\nHi team\n", "no mail header"),
        (b"\x00\x01\x02binary\n", "binary data"),
    ],
)
def test_not_an_email_says_why(raw: bytes, reason: str) -> None:
    with pytest.raises(NotAnEmail, match=reason):
        parse_message(raw)


def test_not_an_email_is_an_ingest_error_and_a_psp_error() -> None:
    assert issubclass(NotAnEmail, IngestError)
    assert issubclass(IngestError, PspError)


@pytest.mark.parametrize(
    "raw",
    [
        b"From someone@example.com Mon Jan  5 10:00:00 2026\nFrom: a@example.com\nSubject: mbox\n\nx\n",
        b"\xef\xbb\xbf\r\n\r\nFrom: a@example.com\r\nSubject: exported with BOM\r\n\r\nx\r\n",
        b" From: lost@example.com\nSubject: folded first line\n\nx\n",
        b"Content-Type: multipart/alternative; boundary=x\n\nAAA\n",
        b"Subject: =?NONE?B?VEVTVA=?=\n\nTEST\n",
        b"X-Custom: first\r\nX-Other: second\r\nFrom: a@example.com\r\n\r\nx\r\n",
        b"X-Custom: first\rX-Other: second\rFrom: a@example.com\r\rx\r",
    ],
)
def test_odd_but_real_mail_is_accepted(raw: bytes) -> None:
    assert isinstance(parse_message(raw), ParsedEmail)


def test_obsolete_blank_before_colon_is_repaired() -> None:
    raw = b"Subject  :  old syntax\r\nFrom :a@example.com\r\n\r\nSubject : stays in the body\r\n"
    parsed = parse_message(raw)
    assert parsed.subject == "old syntax"
    assert parsed.sender == "a@example.com"
    assert parsed.text == "Subject : stays in the body"
    assert "ObsoleteHeaderSyntax" in parsed.defects
    assert parsed.content_hash == content_hash(raw)


def test_parser_failures_become_not_an_email(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(raw: bytes) -> None:
        raise LookupError("unknown encoding: x-hostile")

    monkeypatch.setattr(email, "message_from_bytes", explode)
    with pytest.raises(NotAnEmail, match="LookupError: unknown encoding: x-hostile"):
        parse_message(b"From: a@example.com\n\nx\n")


def test_address_parser_failures_become_not_an_email(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(value: str, **options: object) -> None:
        raise MailParserError("cannot scan this header")

    monkeypatch.setattr(ingest.parsing, "get_addresses", explode)
    with pytest.raises(NotAnEmail, match="MailParserError: cannot scan this header"):
        parse_message(b'From: "Last, First" <a@example.com>\n\nx\n')


def test_absurdly_deep_nesting_is_not_an_email() -> None:
    depth = 3000
    nested = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i) for i in range(depth))
    with pytest.raises(NotAnEmail, match="nested too deeply"):
        parse_message(b"From: a@example.com\n" + nested + b"Content-Type: text/plain\n\nx\n")


def test_huge_headers_are_handled_in_one_pass() -> None:
    raw = b"From: a@example.com\nReferences: " + b"<" * 500_000 + b"\nMessage-ID: <x@example.com>\n\nbody\n"
    parsed = parse_message(raw)
    assert parsed.references == ()
    assert parsed.message_id == "x@example.com"


def outcome(raw: bytes) -> ParsedEmail | NotAnEmail:
    """The parsed message, or the refusal (so that tests assert outside an except block)."""
    try:
        return parse_message(raw)
    except NotAnEmail as exc:
        return exc


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_any_bytes_parse_or_raise_not_an_email(raw: bytes) -> None:
    result = outcome(raw)
    if isinstance(result, NotAnEmail):
        assert str(result)
    else:
        assert result.size == len(raw)
        assert result.message_id


_HEADER_NAMES = st.sampled_from(["From", "To", "Cc", "Subject", "Date", "Message-ID", "Content-Type", "References"])
_HEADER_VALUE = st.text(st.characters(codec="utf-8"), max_size=80)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_HEADER_NAMES, _HEADER_VALUE), min_size=1, max_size=8), st.binary(max_size=500))
def test_mail_shaped_input_with_garbage_values_parses(headers: list[tuple[str, str]], body: bytes) -> None:
    head = "".join(f"{name}: {value}\n" for name, value in headers).encode("utf-8", "surrogateescape")
    parsed = parse_message(head + b"\n" + body)  # a well-formed header block is always a message
    for value in (parsed.subject, parsed.text, parsed.new_text, parsed.message_id, *parsed.recipients):
        value.encode("utf-8")


# --- the labelled support mail --------------------------------------------------------------------


def _labelled_files() -> list[str]:
    with (LABELLED / "labels.tsv").open(encoding="utf-8") as handle:
        return [row["file"] for row in csv.DictReader(handle, delimiter="\t")]


@pytest.mark.parametrize("name", _labelled_files())
def test_every_labelled_message_parses(name: str) -> None:
    parsed = parse_message((LABELLED / name).read_bytes())
    assert parsed.sender is not None
    assert parsed.date is not None
    assert not parsed.message_id_synthetic
    assert parsed.text.strip()
    assert parsed.new_text.strip()
    assert parsed.defects == ()


def test_labelled_threads_point_at_messages_of_the_set() -> None:
    parsed = [parse_message(path.read_bytes()) for path in sorted(LABELLED.glob("*.eml"))]
    ids = {message.message_id for message in parsed}
    assert len(parsed) == 127
    assert len(ids) == 127
    for message in parsed:
        assert set(message.in_reply_to) <= ids
        assert set(message.references) <= ids


def test_labelled_attachments_are_found() -> None:
    parsed = parse_message(next(LABELLED.glob("004-*.eml")).read_bytes())
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [
        ("myDEBUG-20260112-083144-558201.txt", "text/plain")
    ]
    assert parsed.attachments[0].size > 0
