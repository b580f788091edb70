"""Turn the raw bytes of one email into a `ParsedEmail`, a typed value the rest of the product can trust.

The standard library's parser builds the MIME tree, as it does inside mail-parser, and mail-parser's
address parser reads From, To, Cc and Reply-To: forgiving where it should be (an encoded display name
that decodes to "Last, First" stays one mailbox) and refusing to guess on ambiguous input. The rest of
mail-parser's `MailParser` is not run: it decodes every body part, re-encodes attachments and parses
the Received chain, which is most of its time, and its answers would not be trusted as they stand (it
answers any attribute name with a header lookup, swallows date errors, invents random names for unnamed
attachments and mixes the text of attached messages into the body). So every field below is read
explicitly from the `email.message.Message`, with the standard library doing the dates, the RFC 2047
words and the body decoding; the defects are the email package's, of every part, plus address and
date problems.

What counts as "not an email" (`NotAnEmail`, the item is quarantined with the reason):

- empty input, or an Outlook .msg / OLE2 file (a client dragged a mail into a folder);
- the first line (after an optional mbox "From " line and blank lines) is not a header field
  `name: value` (obsolete `name : value` accepted, a leading folded line tolerated);
- the header block holds no header a mail system writes (From, To, Subject, Date, Message-ID, Received,
  Content-Type, MIME-Version, …), so "CAUTION: read this" on the first line of a text file is not mail;
- the parser itself fails on the input (deep nesting, codec errors it does not contain); see
  `parse_message`, the one place those failures are caught.

Anything else is a message, however broken: a missing From, Date or Message-ID, a header block cut
short by a bad line, broken MIME boundaries all parse, with the problem listed in `defects`.
"""

from __future__ import annotations

import email
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.header import Header, decode_header
from email.message import Message
from email.utils import collapse_rfc2231_value, parsedate_to_datetime
from html.parser import HTMLParser
from types import MappingProxyType
from typing import Any

from mailparser.exceptions import MailParserError
from mailparser.utils import get_addresses

from ingest.errors import NotAnEmail
from ingest.quoting import new_text

SYNTHETIC_ID_DOMAIN = "synthetic.psp.invalid"

# Failures of mail-parser and the email package on hostile input that mean "cannot parse this item".
# Caught in exactly one place, `parse_message`, and turned into `NotAnEmail` (as is RecursionError, from
# nesting the parser cannot walk). ValueError includes UnicodeError; LookupError covers unknown codecs;
# AssertionError is what html.parser and email internals raise on markup and structure they reject.
_PARSER_FAILURES = (MailParserError, ValueError, LookupError, TypeError, AttributeError, AssertionError)

# Headers a mail system writes; at least one must be present for the bytes to count as a message.
_MAIL_HEADERS = frozenset(
    {
        "from", "sender", "reply-to", "to", "cc", "bcc", "subject", "date", "message-id", "in-reply-to",
        "references", "received", "return-path", "delivered-to", "x-original-to", "envelope-to",
        "mime-version", "content-type", "content-transfer-encoding", "content-disposition", "content-id",
        "dkim-signature", "authentication-results", "received-spf", "arc-seal", "list-id", "precedence",
        "auto-submitted", "resent-from", "resent-date", "resent-message-id", "x-mailer", "user-agent",
        "thread-index", "thread-topic", "importance", "x-priority", "errors-to", "comments", "keywords",
    }
)  # fmt: skip
_HEADER_SCAN_LIMIT = 65536
_FIELD = re.compile(rb"([!-9;-~]{1,200})([ \t]*):")
# Two line ends in a row; atomic groups so that the CR and LF of one CRLF never count as two.
_BLANK_LINE = re.compile(rb"(?>\r\n|\n|\r)(?>\r\n|\n|\r)")
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_UTF8_BOM = b"\xef\xbb\xbf"
# Dates outside this range are typos or spam tricks (year 3609 is in the corpus), not when mail was sent.
_PLAUSIBLE_YEARS = range(1970, 2100)
_WHITESPACE = re.compile(r"\s+")
_MAX_ID = 998
_FORWARD_MARKER = "---------- Forwarded message ----------"
_MAX_ENCLOSURE_DEPTH = 3


@dataclass(frozen=True, slots=True)
class Attachment:
    """One attached file.

    Attributes:
        filename: the decoded name the sender gave, or None; untrusted, never use it as a path.
        content_type: lower-case MIME type, e.g. "application/pdf"; "message/rfc822" for an attached mail.
        size: decoded size in bytes (for base64, counted from the encoded length: exact unless the
            base64 is malformed).
    """

    filename: str | None
    content_type: str
    size: int


@dataclass(frozen=True, slots=True)
class AuthVerdict:
    """One method result of an Authentication-Results header (RFC 8601).

    Attributes:
        authserv_id: the first token of the header: the host that checked. Only verdicts from our own
            MX mean anything; a sender can write any Authentication-Results header it likes.
        method: "spf", "dkim", "dmarc", "arc", … (lower-case).
        result: "pass", "fail", "softfail", "neutral", "none", … (lower-case).
        domain: the domain the result is about (header.d, header.i, smtp.mailfrom, header.from or
            smtp.helo, in that order of preference), lower-case, or None.
    """

    authserv_id: str
    method: str
    result: str
    domain: str | None


@dataclass(frozen=True, slots=True)
class ParsedEmail:
    """Everything the classifier, the threader and the store need from one message.

    Attributes:
        message_id: the Message-ID without angle brackets; when missing or empty, a stable synthetic
            one, `<sha256[:32]>@synthetic.psp.invalid` of `content_hash`. Not unique on its own: the
            store keys items on it together with `content_hash`.
        message_id_synthetic: True when `message_id` was made up.
        sender: the first From address (the Sender address when From has none), lower-case, or None.
        sender_name: the decoded display name of `sender`, "" when none.
        recipients: To and Cc addresses, lower-case, de-duplicated, in header order.
        reply_to: the first Reply-To address, lower-case, or None.
        subject: the decoded Subject on one line, "" when missing.
        date: the Date header as an aware UTC datetime, or None when missing, unparseable or implausible.
        date_problem: why `date` is None ("no Date header", "unparseable Date header: …"), else None.
        in_reply_to: message ids from In-Reply-To, without brackets.
        references: message ids from References, without brackets, oldest first.
        text: the plain text body (from the HTML part when there is no plain one); the text of an
            attached message follows a "---------- Forwarded message ----------" line.
        new_text: `text` without quoted history and signature (see `ingest.quoting`).
        attachments: the attached files outside any attached message.
        defects: sorted short names of what was wrong with the message (MIME, address, date, charset).
        headers: lower-case header name -> decoded one-line values, in order, for rules that test a
            header's presence or value.
        auth_results: every verdict of every Authentication-Results header.
        content_types: lower-case MIME type of every part outside attached messages, in walk order.
        report_type: the report-type of a multipart/report ("delivery-status",
            "disposition-notification", "feedback-report"), lower-case, or None.
        calendar_method: the iTIP method of a text/calendar part ("REQUEST", "REPLY", …), or None.
        content_hash: sha256 hex of the raw bytes with line endings made LF and trailing blanks at line
            ends removed: a CRLF and an LF copy of one message hash the same.
        size: length of the raw bytes.
    """

    message_id: str
    message_id_synthetic: bool
    sender: str | None
    sender_name: str
    recipients: tuple[str, ...]
    reply_to: str | None
    subject: str
    date: datetime | None
    date_problem: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    text: str
    new_text: str
    attachments: tuple[Attachment, ...]
    defects: tuple[str, ...]
    headers: Mapping[str, tuple[str, ...]]
    auth_results: tuple[AuthVerdict, ...]
    content_types: tuple[str, ...]
    report_type: str | None
    calendar_method: str | None
    content_hash: str
    size: int

    def __reduce__(self) -> tuple[Callable[[dict[str, object]], ParsedEmail], tuple[dict[str, object]]]:
        """Picklable (the read-only header view is not), so worker processes can parse for us."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["headers"] = dict(self.headers)
        return _rebuild, (values,)

    def header(self, name: str) -> str | None:
        """The first value of header `name` (any case), or None when the message has none."""
        values = self.headers.get(name.lower())
        return values[0] if values else None


def _rebuild(values: dict[str, Any]) -> ParsedEmail:
    return ParsedEmail(**{**values, "headers": MappingProxyType(values["headers"])})


def parse_message(raw: bytes) -> ParsedEmail:
    """Parse one raw RFC 5322 message.

    Raises:
        NotAnEmail: the bytes are not a message (see the module docstring), or the parser failed on
            them; the message says which, for the quarantine.
    """
    data = bytes(raw)
    digest = _content_hash(data)
    body, defects = _strip_leading_junk(data)
    if _inspect_header_block(body):
        body = _repair_obsolete_field_names(body)
        defects.add("ObsoleteHeaderSyntax")
    try:
        return _build(email.message_from_bytes(body), defects, digest, len(data))
    except RecursionError as exc:
        raise NotAnEmail("the message is nested too deeply to parse") from exc
    except _PARSER_FAILURES as exc:
        raise NotAnEmail(f"the mail parser failed on this message: {type(exc).__name__}: {exc}") from exc


def content_hash(raw: bytes) -> str:
    """The `ParsedEmail.content_hash` of `raw`, without parsing it."""
    return _content_hash(bytes(raw))


def _content_hash(data: bytes) -> str:
    normalised = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return hashlib.sha256(_strip_trailing_blanks(normalised)).hexdigest()


def _strip_trailing_blanks(data: bytes) -> bytes:
    """Remove blanks at line ends (linear: one rstrip per line, none at all in the common case)."""
    if b" \n" not in data and b"\t\n" not in data:
        return data.rstrip(b" \t")
    return b"\n".join([line.rstrip(b" \t") for line in data.split(b"\n")])


def _strip_leading_junk(data: bytes) -> tuple[bytes, set[str]]:
    """Drop a UTF-8 byte-order mark and blank lines before the headers, which some exports add."""
    stripped = data.removeprefix(_UTF8_BOM).lstrip(b"\r\n")
    return stripped, ({"LeadingJunkRemoved"} if len(stripped) != len(data) else set())


def _inspect_header_block(data: bytes) -> bool:
    """Raise NotAnEmail unless `data` opens with a mail header block; True when obsolete
    `name : value` fields need repair before the standard library will read them."""
    if not data.strip():
        raise NotAnEmail("the message is empty")
    if data.startswith(_OLE2_MAGIC):
        raise NotAnEmail("this is an Outlook .msg file (OLE2 compound document), not RFC 5322 mail: save it as .eml")
    head = data[:_HEADER_SCAN_LIMIT]
    blank = _BLANK_LINE.search(head)
    lines = (head[: blank.start()] if blank else head).splitlines()
    if lines and lines[0].startswith(b"From "):
        lines = lines[1:]  # mbox separator line
    fields: list[bytes] = []
    obsolete = False
    for line in lines:
        if not line:
            break
        if line[:1] in (b" ", b"\t"):
            continue  # folded continuation, even a blank-looking one (tolerated before the first field too)
        match = _FIELD.match(line)
        if match is None:
            if fields:
                break  # the parser ends the header block here too
            raise NotAnEmail(f"the first line is not a header field: {_snippet(line)}")
        fields.append(match.group(1).lower())
        obsolete = obsolete or bool(match.group(2))
    if not any(name.decode("ascii") in _MAIL_HEADERS for name in fields):
        first = fields[0].decode("ascii") if fields else "none"
        raise NotAnEmail(f"no mail header (From, To, Subject, Date, Received, Content-Type …); first field: {first}")
    return obsolete


def _repair_obsolete_field_names(data: bytes) -> bytes:
    """Rewrite `Name  :` as `Name:` in the header block (RFC 5322 obs-optional allows the blanks; the
    email package does not and would drop the whole header block)."""
    out: list[bytes] = []
    rest = 0
    for number, line in enumerate(data.splitlines(keepends=True)):
        match = _FIELD.match(line)
        if match is None and not (line[:1] in (b" ", b"\t") or (number == 0 and line.startswith(b"From "))):
            break  # the blank line, or a line that ends the header block: the body is left alone
        out.append(line if match is None else match.group(1) + line[match.end() - 1 :])
        rest += len(line)
    return b"".join(out) + data[rest:]


def _snippet(line: bytes) -> str:
    text = line[:60].decode("latin-1")
    kind = "binary data " if any(byte < 9 for byte in line[:60]) else ""
    return f"{kind}{text!r}"


def _build(message: Message, defects: set[str], digest: str, size: int) -> ParsedEmail:
    """Read every field explicitly from the parsed message."""
    for part in message.walk():
        defects.update(type(defect).__name__ for defect in part.defects)
    raw_headers = [(name.strip().lower(), value) for name, value in message.raw_items()]
    headers: dict[str, list[str]] = {}
    for name, value in raw_headers:
        headers.setdefault(name, []).append(_one_line(_decode(value)))

    def raw_values(name: str) -> list[str]:
        return [value for key, value in raw_headers if key == name]

    senders = _address_list(raw_values("from"), defects) or _addresses(raw_values("sender"))
    recipients = [
        address for _, address in _address_list(raw_values("to"), defects) + _address_list(raw_values("cc"), defects)
    ]
    reply_to = _address_list(raw_values("reply-to"), defects)
    message_id = _first_id(headers.get("message-id", []))
    date, date_problem = _parse_date(headers.get("date"))
    if date_problem and "date" in headers:
        defects.add("DateHeaderDefect")
    structure = _Structure(message, defects)
    text = structure.text()
    return ParsedEmail(
        message_id=message_id or f"{digest[:32]}@{SYNTHETIC_ID_DOMAIN}",
        message_id_synthetic=not message_id,
        sender=senders[0][1] if senders else None,
        sender_name=senders[0][0] if senders else "",
        recipients=tuple(dict.fromkeys(recipients)),
        reply_to=reply_to[0][1] if reply_to else None,
        subject=headers["subject"][0] if headers.get("subject") else "",
        date=date,
        date_problem=date_problem,
        in_reply_to=tuple(_ids(" ".join(headers.get("in-reply-to", [])))),
        references=tuple(_ids(" ".join(headers.get("references", [])))),
        text=text,
        new_text=new_text(text),
        attachments=tuple(structure.attachments),
        defects=tuple(sorted(defects)),
        headers=MappingProxyType({name: tuple(values) for name, values in headers.items()}),
        auth_results=tuple(v for value in headers.get("authentication-results", []) for v in _auth_results(value)),
        content_types=tuple(structure.content_types),
        report_type=structure.report_type,
        calendar_method=structure.calendar_method,
        content_hash=digest,
        size=size,
    )


# --- header values ---------------------------------------------------------------------------------


def _decode(value: object) -> str:
    """A header value as clean text: raw 8-bit bytes read as UTF-8 (else Windows-1252), RFC 2047
    encoded words decoded, no lone surrogates, no NUL (PostgreSQL rejects both)."""
    if isinstance(value, Header):
        text = _clean("".join(_chunk_text(chunk, charset) for chunk, charset in decode_header(value)))
    else:
        text = _clean(str(value))
    if "=?" not in text:
        return text
    try:
        chunks = decode_header(text)
    except HeaderParseError:
        return text
    return _clean("".join(_chunk_text(chunk, charset) for chunk, charset in chunks))


def _chunk_text(chunk: bytes | str, charset: str | None) -> str:
    if isinstance(chunk, str):
        return chunk
    if charset is None:
        # decode_header returns the unencoded parts of a str as raw-unicode-escape bytes.
        return chunk.decode("raw-unicode-escape", "replace")
    return _decode_declared(chunk, None if charset == "unknown-8bit" else charset)


def _decode_declared(data: bytes, charset: str | None) -> str:
    """Bytes in the charset the sender declared. Senders often use the Windows or GB superset of what
    they declare, so that is tried next; an unknown charset falls back to `_guess_text`."""
    if not charset:
        return _guess_text(data)
    try:
        return data.decode(charset)
    except LookupError:
        return _guess_text(data)
    except UnicodeError:
        superset = _SUPERSETS.get(charset.lower())
        if superset is not None:
            try:
                return data.decode(superset)
            except UnicodeError:
                pass  # fall through to the declared charset with replacement characters
        try:
            return data.decode(charset, "replace")
        except UnicodeError:  # codecs such as "undefined" refuse even with "replace"
            return _guess_text(data)


_SUPERSETS = {
    "us-ascii": "utf-8",
    "ascii": "utf-8",
    "iso-8859-1": "cp1252",
    "latin-1": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "big5": "big5hkscs",
}


def _guess_text(chunk: bytes) -> str:
    """Undeclared 8-bit bytes: UTF-8 when they are valid UTF-8, else Windows-1252 (the usual culprit)."""
    try:
        return chunk.decode("utf-8")
    except UnicodeDecodeError:
        return chunk.decode("cp1252", "replace")


def _clean(text: str) -> str:
    """Text any database accepts: raw bytes the email package kept as surrogate escapes are decoded,
    other lone surrogates replaced, NUL removed."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            text = _guess_text(text.encode("utf-8", "surrogateescape"))
        except UnicodeEncodeError:
            text = text.encode("utf-8", "replace").decode("utf-8")
    return text.replace("\x00", "") if "\x00" in text else text


def _has_escapes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _one_line(text: str) -> str:
    if "\n" in text or "\t" in text or "  " in text or "\r" in text:
        text = _WHITESPACE.sub(" ", text)
    return text.strip()


def _addresses(values: list[str]) -> list[tuple[str, str]]:
    """(display name, lower-case address) pairs parsed with mail-parser's address parser, which keeps
    an encoded "Last, First" name as one mailbox and refuses to guess on ambiguous input ("Bob <a>
    Bobby <b>" gives nothing)."""
    pairs = (pair for value in values for pair in get_addresses(value, decode_names=True))
    return _mailboxes(pairs)


def _mailboxes(pairs: Iterable[object]) -> list[tuple[str, str]]:
    """Clean (display name, address) pairs; anything not a pair of strings or without an address is dropped."""
    found: list[tuple[str, str]] = []
    for pair in pairs:
        if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(field, str) for field in pair)):
            continue
        display, address = _clean(pair[0]), _clean(pair[1]).strip().lower()
        if address:
            found.append((_one_line(_decode(display) if "=?" in display else display), address))
    return found


def _address_list(raw: list[str], defects: set[str]) -> list[tuple[str, str]]:
    """(display name, lower-case address) pairs of the first From, To, Cc or Reply-To header.

    mail-parser's address parser turns raw 8-bit display names into escaped text ("J\\udcf6rg"), so a
    header with raw 8-bit bytes is parsed from its cleaned value. What the parser could not make sense
    of is listed as an "AddressHeaderDefect".
    """
    if any(_has_escapes(value) for value in raw):
        return _addresses([_clean(value) for value in raw])
    if not raw:
        return []
    plain = _plain_mailboxes(raw[0])
    if plain is not None:
        return plain
    problems: list[object] = []
    pairs = get_addresses(raw[0], defects=problems, decode_names=True)
    if problems:
        defects.add("AddressHeaderDefect")
    return _mailboxes(pairs)


# A mailbox any parser reads the same way: `Name <local@domain>` or `local@domain`, the name unquoted
# letters, digits, blanks, dots, apostrophes and hyphens. Most mail carries nothing else, and
# mail-parser's scanner costs a quarter of a millisecond per header; quotes, comments, encoded words,
# groups, 8-bit text and anything odd still go to it.
_ADDR_SPEC = r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_PLAIN_MAILBOX = re.compile(rf"[ \t\r\n]*(?:([A-Za-z0-9 .'-]*?)[ \t\r\n]*<({_ADDR_SPEC})>|({_ADDR_SPEC}))[ \t\r\n]*")


def _plain_mailboxes(value: str) -> list[tuple[str, str]] | None:
    """The mailboxes of a header made only of plain mailboxes (see `_PLAIN_MAILBOX`), else None."""
    found: list[tuple[str, str]] = []
    for item in value.split(","):
        match = _PLAIN_MAILBOX.fullmatch(item)
        if match is None:
            return None
        name, bracketed, bare = match.groups()
        found.append((" ".join(name.split()) if name else "", (bracketed or bare).lower()))
    return found


def _first_id(values: list[str]) -> str:
    for value in values:
        ids = _ids(value)
        if ids:
            return ids[0]
        token = value.strip("<> \t").split(" ", 1)[0]
        if token:
            return token[:_MAX_ID]
    return ""


def _ids(value: str) -> list[str]:
    """Message ids between angle brackets; bare tokens containing '@' when there are no brackets.
    A scan, not a regex, so a 200 KB header of '<' costs one pass."""
    found: list[str] = []
    start = value.find("<")
    while start != -1:
        end = value.find(">", start + 1)
        if end == -1:
            break
        inner = "".join(value[start + 1 : end].split())
        if inner:
            found.append(inner[:_MAX_ID])
        start = value.find("<", end + 1)
    if not found:
        found = [token.strip("<>,;")[:_MAX_ID] for token in value.split() if "@" in token]
    return found


def _parse_date(values: list[str] | None) -> tuple[datetime | None, str | None]:
    """The Date header in UTC, or None and the reason. "-0000" (zone unknown) is read as UTC."""
    if not values:
        return None, "no Date header"
    value = values[0]
    if not value:
        return None, "empty Date header"
    try:
        parsed = parsedate_to_datetime(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        parsed = parsed.astimezone(UTC)
    except (ValueError, TypeError, OverflowError, IndexError) as exc:
        return None, f"unparseable Date header {value[:80]!r}: {exc}"
    if parsed.year not in _PLAUSIBLE_YEARS:
        return None, f"implausible Date header {value[:80]!r}"
    return parsed, None


def _auth_results(value: str) -> Iterator[AuthVerdict]:
    """Verdicts of one Authentication-Results value: `authserv-id [version]; method=result prop=val …; …`."""
    segments = _strip_comments(value).split(";")
    head = segments[0].split()
    if not head:
        return
    authserv_id = head[0].lower()
    for segment in segments[1:]:
        tokens = segment.split()
        if not tokens or "=" not in tokens[0]:
            continue  # "none", or an empty trailing segment
        method, result = tokens[0].split("=", 1)
        properties: dict[str, str] = {}
        for token in tokens[1:]:
            key, _, prop = token.partition("=")
            properties.setdefault(key.lower(), prop)
        domain = next(
            (
                properties[key].strip('"').rsplit("@", 1)[-1].lower()
                for key in ("header.d", "header.i", "smtp.mailfrom", "header.from", "smtp.helo")
                if properties.get(key, "").strip('"')
            ),
            None,
        )
        yield AuthVerdict(authserv_id, method.split("/", 1)[0].lower(), result.lower(), domain)


def _strip_comments(value: str) -> str:
    """Remove (nested) comments outside quoted strings, in one pass over the parentheses and quotes."""
    if "(" not in value:
        return value
    kept: list[str] = []
    depth = 0
    quoted = False
    start = 0
    for match in _COMMENT_SYNTAX.finditer(value):
        char, at = match.group(), match.start()
        if quoted:
            quoted = char != '"'
        elif char == "(":
            if not depth:
                kept.append(value[start:at])
            depth += 1
        elif char == ")" and depth:
            depth -= 1
            start = at + 1
        elif char == '"' and not depth:
            quoted = True
    if not depth:
        kept.append(value[start:])
    return "".join(kept)


_COMMENT_SYNTAX = re.compile(r'[()"]')


# --- MIME structure and body -----------------------------------------------------------------------


class _Structure:
    """One walk over the parts outside attached messages: body text, attachments, types, report kind.

    An attached message (message/rfc822) is listed as an attachment and its text appended to the body
    behind a forward marker, so `new_text` cuts it off while classification can still read it.
    """

    def __init__(self, message: Message, defects: set[str], depth: int = 0) -> None:
        self.attachments: list[Attachment] = []
        self.content_types: list[str] = []
        self.report_type: str | None = None
        self.calendar_method: str | None = None
        self._plain: list[str] = []
        self._html: list[str] = []
        self._enclosed: list[Message] = []
        self._defects = defects
        self._depth = depth
        self._top = message
        self._walk(message)

    def text(self) -> str:
        if self._plain:
            body = "\n\n".join(self._plain)
        else:
            body = "\n\n".join(_html_to_text(html, self._defects) for html in self._html)
        parts = [body.strip("\n")] if body.strip() else []
        for enclosed in self._enclosed:
            if self._depth < _MAX_ENCLOSURE_DEPTH:
                summary = _Structure(enclosed, self._defects, self._depth + 1).summary()
                parts.append(f"{_FORWARD_MARKER}\n{summary}".rstrip())
        return "\n\n".join(parts)

    def summary(self) -> str:
        """The enclosed message as a mail client shows a forward: a few headers, a blank line, the text."""
        lines = [f"{name}: {_one_line(_decode(value))}" for name in _SUMMARY_HEADERS if (value := self._top.get(name))]
        return "\n".join([*lines, "", self.text()])

    def _walk(self, message: Message) -> None:
        stack = [message]
        while stack:
            part = stack.pop()
            content_type = part.get_content_type().lower()
            maintype, _, subtype = content_type.partition("/")
            self.content_types.append(content_type)
            if content_type == "multipart/report" and self.report_type is None:
                self.report_type = _param(part, "report-type")
            if content_type == "text/calendar" and self.calendar_method is None:
                self.calendar_method = _calendar_method(part)
            if maintype == "message" and subtype in ("rfc822", "global"):
                self._enclose(part, is_top=part is message)
            elif part.is_multipart():
                if maintype != "message":  # delivery-status blocks are not parts to walk
                    payload = part.get_payload()
                    if isinstance(payload, list):
                        stack.extend(reversed([child for child in payload if isinstance(child, Message)]))
            else:
                self._leaf(part, maintype, subtype)

    def _enclose(self, part: Message, *, is_top: bool) -> None:
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload and isinstance(payload[0], Message) else None
        if not is_top:
            self.attachments.append(Attachment(_filename(part), "message/rfc822", self._enclosed_size(part, inner)))
        if inner is not None:
            self._enclosed.append(inner)

    def _enclosed_size(self, part: Message, inner: Message | None) -> int:
        if inner is None:
            payload = part.get_payload(decode=True)
            return len(payload) if isinstance(payload, bytes) else 0
        try:
            return len(inner.as_bytes())
        except (LookupError, UnicodeError, ValueError, TypeError):
            # Re-serialising a broken enclosed message can fail; its size is not worth losing the mail.
            self._defects.add("EnclosedMessageSizeUnknown")
            return 0

    def _leaf(self, part: Message, maintype: str, subtype: str) -> None:
        filename = _filename(part)
        attached = filename is not None or part.get_content_disposition() == "attachment"
        if maintype == "multipart":  # declared multipart without usable boundary: its body is the text
            self._plain.append(_body_text(part, self._defects))
        elif maintype == "text" and subtype in ("plain", "html") and not attached:
            (self._plain if subtype == "plain" else self._html).append(_body_text(part, self._defects))
        elif attached or maintype not in ("text", "message"):
            self.attachments.append(Attachment(filename, f"{maintype}/{subtype}", _decoded_size(part)))


_SUMMARY_HEADERS = ("From", "Date", "Subject", "To")


def _param(part: Message, name: str) -> str | None:
    value = part.get_param(name)
    if value is None or (isinstance(value, str) and not value):
        return None
    return _clean(collapse_rfc2231_value(value)).strip().lower() or None


def _calendar_method(part: Message) -> str | None:
    method = _param(part, "method")
    if method:
        return method.upper()
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        for line in payload[:8192].splitlines():
            if line.upper().startswith(b"METHOD:"):
                return line[7:].strip().decode("ascii", "replace").upper() or None
    return None


def _filename(part: Message) -> str | None:
    name = part.get_filename()
    if not name:
        return None
    return _one_line(_decode(name)) or None


def _decoded_size(part: Message) -> int:
    """Size of a part's content after transfer decoding. For base64 it is counted from the encoded
    length (exact for well-formed base64) instead of decoding the file, which costs more than the
    rest of the parse for a large attachment."""
    payload = part.get_payload()
    if isinstance(payload, str) and str(part.get("content-transfer-encoding", "")).strip().lower() == "base64":
        data_chars = len(payload) - sum(payload.count(char) for char in "\r\n\t =")
        return data_chars * 3 // 4
    decoded = part.get_payload(decode=True)
    return len(decoded) if isinstance(decoded, bytes) else 0


def _body_text(part: Message, defects: set[str]) -> str:
    """Decode a text part: declared charset, else UTF-8, else Windows-1252; line ends become LF."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset()
    text = _decode_declared(payload, charset)
    if charset and "\ufffd" in text and b"\xef\xbf\xbd" not in payload:
        defects.add("CharsetDecodeDefect")
    return _clean(text).replace("\r\n", "\n").replace("\r", "\n")


class _HtmlText(HTMLParser):
    """HTML to plain text: tags, scripts and styles dropped, entities unescaped, a line break at block
    elements, `<li>` as "- ", and blockquotes as "> " lines so `new_text` sees the quoting."""

    # Elements that end a line, and those among them that also leave a blank line (paragraphs).
    _BLOCKS = frozenset(
        {
            "p", "div", "br", "li", "tr", "table", "thead", "tbody", "tfoot", "ul", "ol", "dl", "dt", "dd",
            "blockquote", "pre", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "header",
            "footer", "address", "center", "form", "fieldset",
        }
    )  # fmt: skip
    _PARAGRAPHS = frozenset(
        {"p", "blockquote", "pre", "hr", "ul", "ol", "dl", "table", "h1", "h2", "h3", "h4", "h5", "h6"}
    )
    # Not "head": an unclosed <head> would hide the whole message.
    _HIDDEN = frozenset({"script", "style", "noscript", "template", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._line: list[str] = []
        self._line_depth = 0
        self._hidden = 0
        self._quote_depth = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag in self._BLOCKS:
            self._break(paragraph=tag in self._PARAGRAPHS)
            if tag == "blockquote":
                self._quote_depth += 1
            elif tag == "pre":
                self._pre += 1
            elif tag == "li":
                self._data("- ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._BLOCKS:
            self._break(paragraph=tag in self._PARAGRAPHS)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self._BLOCKS:
            self._break(paragraph=tag in self._PARAGRAPHS)
            if tag == "blockquote":
                self._quote_depth = max(0, self._quote_depth - 1)
            elif tag == "pre":
                self._pre = max(0, self._pre - 1)

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        if self._pre:
            first, *rest = data.split("\n")
            self._data(first)
            for line in rest:
                self._break(keep_blank=True)
                self._data(line)
        else:
            self._data(_WHITESPACE.sub(" ", data.replace("\xa0", " ")))

    def _data(self, data: str) -> None:
        if not self._line:
            self._line_depth = self._quote_depth
        self._line.append(data)

    def _break(self, *, paragraph: bool = False, keep_blank: bool = False) -> None:
        """End the current line; a paragraph also leaves one blank line (never two in a row)."""
        text = "".join(self._line).strip()
        self._line = []
        prefix = "> " * self._line_depth
        if text:
            self.lines.append(prefix + text)
        elif keep_blank:
            self.lines.append(prefix.rstrip())
        if paragraph and self.lines and self.lines[-1].strip("> "):
            self.lines.append(("> " * min(self._line_depth, self._quote_depth)).rstrip())
        self._line_depth = self._quote_depth

    def result(self) -> str:
        self._break()
        while self.lines and not self.lines[-1].strip("> "):
            self.lines.pop()
        return "\n".join(self.lines).strip("\n")


def _html_to_text(html: str, defects: set[str]) -> str:
    converter = _HtmlText()
    try:
        converter.feed(html)
        converter.close()
    except AssertionError:
        # html.parser (via _markupbase) raises AssertionError on some malformed declarations; keep the
        # text read so far rather than lose the message.
        defects.add("HtmlToTextIncomplete")
    return converter.result()
