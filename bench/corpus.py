"""A deterministic, realistic support mailbox for the ingest benchmark, cached on disk.

Why generate rather than ship a corpus: the benchmark needs 5,000 to 20,000 messages (150 to
600 MB), too much for the repository, and real client mail cannot be published. What matters
for the poller's speed is reproduced instead: the size mix (most mail is a few KB, a fraction
carries 20–200 KB attachments, so 5,000 messages come to about 148 MB as fetched), the MIME
shapes (plain text, multipart/alternative with heavy Outlook-style HTML, multipart/mixed with
PDFs, PNGs and CSV exports), the encodings the parser has to undo (quoted-printable and base64
bodies, utf-8, iso-8859-1 and windows-1252 text, RFC 2047 subjects and names, RFC 2231 file
names), and the structure the store has to resolve (threads with In-Reply-To/References chains
and quoted history, staff replies from the staff domain, client domains with verified senders,
strangers, a few auto-replies that must be ignored).

Everything comes from one `random.Random(seed)`, so a given (N, seed) always yields the same
bytes; the result is cached under the cache folder keyed by N, seed and GENERATOR_VERSION (bump
it whenever the output changes, so stale caches are never reused). Messages are written with LF
line ends, as Dovecot's own delivery stores them; IMAP serves them with CRLF (`wire_bytes`).

Run on its own to pre-build a cache: `python -m bench.corpus --messages 5000`.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import quopri
import random
import shutil
import tempfile
import textwrap
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.header import Header
from email.utils import format_datetime, formataddr
from pathlib import Path
from urllib.parse import quote

GENERATOR_VERSION = 6
DEFAULT_SEED = 20261126
DEFAULT_CACHE_DIR = Path(tempfile.gettempdir()) / "psp-bench-cache"

STAFF_DOMAIN = "psp-consult.example"
MX_HOST = f"mx.{STAFF_DOMAIN}"
"""Our MX: its Authentication-Results are the ones psp trusts (`[mail].trusted_authserv_id`)."""
SUPPORT_ADDRESS = f"support@{STAFF_DOMAIN}"

# Share of messages with attachments; tuned so that 5,000 messages ≈ 148 MB as fetched.
ATTACHMENT_RATE = 0.136
ATTACHMENT_MIN_BYTES = 20_000
ATTACHMENT_MAX_BYTES = 200_000
AUTO_REPLY_RATE = 0.02
REPLY_RATE = 0.58
STRANGER_RATE = 0.18
UNVERIFIED_RATE = 0.04
QUOTE_MAX_LINES = 120
_META_CHARSET = "{charset-of-this-part}"
OPEN_THREADS_KEPT = 150
MEAN_GAP_SECONDS = 25 * 60  # about 60 messages a day


@dataclass(frozen=True)
class Person:
    name: str
    address: str

    @property
    def first(self) -> str:
        return self.name.split()[0]

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


@dataclass(frozen=True)
class Company:
    """A client, as psp knows it: a name and a mail domain (`psp client add --domain`)."""

    name: str
    domain: str
    people: tuple[Person, ...]
    mailer: str
    disclaimer: bool = False


def _people(domain: str, *pairs: tuple[str, str]) -> tuple[Person, ...]:
    return tuple(Person(name, f"{local}@{domain}") for name, local in pairs)


CLIENTS: tuple[Company, ...] = (
    Company(
        "Acme Shop",
        "acme-shop.example",
        _people("acme-shop.example", ("Jürgen Müller", "j.mueller"), ("Sarah Collins", "sarah.collins")),
        "outlook",
        disclaimer=True,
    ),
    Company(
        "Northwind Traders",
        "northwind.example",
        _people("northwind.example", ("Zoë Dubois", "zoe"), ("Mark Ellis", "mark.ellis")),
        "thunderbird",
    ),
    Company(
        "Café Lumière",
        "cafe-lumiere.example",
        _people("cafe-lumiere.example", ("François Lefèvre", "francois"), ("Élodie Martin", "elodie")),
        "apple",
    ),
    Company(
        "Nordlys Outdoor",
        "nordlys.example",
        _people("nordlys.example", ("Søren Åberg", "soren"), ("Ingrid Dahl", "ingrid.dahl")),
        "gmail",
    ),
    Company(
        "Wiśniewski Books",
        "wisniewski-books.example",
        _people("wisniewski-books.example", ("Łukasz Wiśniewski", "lukasz"), ("Anna Nowak", "a.nowak")),
        "outlook",
        disclaimer=True,
    ),
    Company(
        "Bluebell Garden Supplies",
        "bluebell.example",
        _people("bluebell.example", ("Oliver Grant", "oliver"), ("Priya Shah", "priya"), ("Ian O'Neil", "ian")),
        "gmail",
    ),
)
STAFF: tuple[Person, ...] = _people(STAFF_DOMAIN, ("Anna Berg", "anna"), ("Tom Keller", "tom"), ("Mia Schröder", "mia"))
SUPPORT = Person("PSP Support", SUPPORT_ADDRESS)

_STRANGER_FIRST = ("Laura", "Kevin", "Hélène", "Marco", "Yuki", "Daniel", "Fatima", "Björn", "Chloé", "Ravi", "Emma")
_STRANGER_LAST = ("Fischer", "Rossi", "García", "Smith", "Nakamura", "Okafor", "Lindqvist", "Moreau", "Patel", "Kowal")
_STRANGER_DOMAINS = ("gmail.example", "outlook.example", "gmx.example", "yahoo.example", "proton.example")
_STRANGER_MAILERS = ("gmail", "outlook", "apple", "thunderbird")

_MODULES = ("Easy Gift Wrap", "One-Page Checkout", "Stock Sync", "PDF Invoices", "Loyalty Points", "Shipping Rules")
_PAGES = ("checkout", "cart", "product page", "order confirmation", "category listing", "customer account")

_NEW_SUBJECTS = (
    "Checkout error after update to {module} {version}",
    "Order #{order} not syncing to the warehouse",
    "Question about invoice {year}-{n}",
    "Shipping rules: free delivery over €{amount} not applied",
    "Problème d'affichage sur la fiche produit {sku}",
    "Frage zur Rechnung {year}-{n} für {month}",
    "{module}: VAT number missing on invoices",
    "Urgent: {page} is blank since {time}",
    "Import of {n} products fails (CSV attached)",
    "Loyalty points not credited for order {order}",
    "Slow {page} since the {version} update",
    "Customers get error 500 on the {page} (order {order})",
    "Can you update {module} to {version}?",
    "Łódź warehouse sync stopped at {time}",
    "Lieferzeiten für {sku} werden falsch angezeigt",
    "Réduction de {n} % non appliquée au panier",
)
_STRANGER_SUBJECTS = (
    "Quote for a custom module?",
    "Do you support {module} on our shop?",
    "Migration of our store — availability?",
    "Recommendation from a friend: help with {page}",
    "Anfrage: Betreuung unseres Shops",
    "Hourly rate for support work",
)
_CLIENT_SENTENCES = (
    "Since the update to {module} {version} customers cannot finish the {page}.",
    "Order #{order} shows as paid in the back office but never reached the warehouse.",
    "We noticed this at {time} and it has happened {n} times since.",
    'The error message says: "Fatal error: Call to a member function getId() on null".',
    "Could you have a look before the weekend, as this is our busiest time?",
    "I have attached a screenshot of what the customer sees.",
    "Nothing was changed on our side apart from the usual product imports.",
    "The shipping cost is calculated as €{amount} even though the basket is above the threshold.",
    "Is this related to the problem we had last month with {module}?",
    "We would also like to know how long the fix will take, so we can tell our customers.",
    "Our accountant asks whether the invoices can show the VAT number of the customer.",
    "The CSV export from the warehouse has {n} lines but only part of them were imported.",
    "Some customers get the old prices on the {page}.",
    "Please call me if anything is unclear, I am in the office until six.",
    "Die Bestellbestätigung wird seit gestern nicht mehr verschickt.",
    "Können Sie bitte prüfen, ob das Modul {module} richtig konfiguriert ist?",
    "Le module {module} affiche une erreur après la mise à jour.",
    "Merci de nous tenir au courant dès que possible.",
)
_STAFF_SENTENCES = (
    "Thanks for the report and the screenshot, that helps a lot.",
    "I could reproduce the problem on a copy of your shop.",
    "The cause is a conflict between {module} and the theme's override of the {page}.",
    "I have deployed a fix to the staging shop; could you check order #{order} there?",
    "This is a bug in {module}, so the time spent on it is not billed.",
    "The update to {version} changed the hook the {page} uses, which is why it broke.",
    "I will keep an eye on the logs over the next days.",
    "Please clear the cache once after the deployment (Advanced parameters → Performance).",
    "Estimated effort is about {n} hours; shall I go ahead?",
    "The import failed on line {n} because of a semicolon in the product name.",
    "I have adjusted the shipping rule so the threshold of €{amount} applies again.",
    "Let me know if you still see the old prices after that.",
)
_FOLLOW_UP_SENTENCES = (
    "Thank you, it works now.",
    "Unfortunately the problem is back since this morning.",
    "Yes, please go ahead.",
    "We checked on staging and order #{order} looks correct.",
    "One more question: does this also affect the mobile version of the {page}?",
    "Vielen Dank für die schnelle Hilfe!",
    "Merci beaucoup, c'est réglé.",
    "Could you send us an invoice for this month's work?",
    "I forwarded your answer to our developer, he will reply directly.",
)
_UTF8_EXTRAS = (
    "✓ Tested on Chrome and Safari.",
    "Greetings from Łódź 😊",
    "Status → still open.",
    "Привет from our team.",
)
_CP1252_EXTRAS = ("It’s the “Buy now” button – nothing happens…", "The total shows €{amount} instead.")
_DISCLAIMER = (
    "This e-mail and any attachments are confidential and may also be privileged. If you are not the "
    "intended recipient, please notify the sender immediately and do not disclose the contents to any "
    "other person, use it for any purpose, or store or copy the information in any medium. Any views "
    "expressed in this message are those of the individual sender, except where the sender specifically "
    "states them to be the views of the company. Registered office: 1 Example Street, London EC1A 1AA."
)
_OUTLOOK_STYLE = """<style><!--
/* Font Definitions */
@font-face {font-family:"Cambria Math"; panose-1:2 4 5 3 5 4 6 3 2 4;}
@font-face {font-family:Calibri; panose-1:2 15 5 2 2 2 4 3 2 4;}
@font-face {font-family:Aptos; panose-1:2 11 0 4 2 2 2 2 2 4;}
/* Style Definitions */
p.MsoNormal, li.MsoNormal, div.MsoNormal {margin:0cm; font-size:11.0pt; font-family:"Calibri",sans-serif;
 mso-ligatures:standardcontextual; mso-fareast-language:EN-US;}
a:link, span.MsoHyperlink {mso-style-priority:99; color:#0563C1; text-decoration:underline;}
a:visited, span.MsoHyperlinkFollowed {mso-style-priority:99; color:#954F72; text-decoration:underline;}
p.MsoListParagraph, li.MsoListParagraph, div.MsoListParagraph {mso-style-priority:34; margin-top:0cm;
 margin-right:0cm; margin-bottom:0cm; margin-left:36.0pt; font-size:11.0pt; font-family:"Calibri",sans-serif;}
span.EmailStyle17 {mso-style-type:personal-compose; font-family:"Calibri",sans-serif; color:windowtext;}
span.EmailStyle20 {mso-style-type:personal-reply; font-family:"Calibri",sans-serif; color:windowtext;}
.MsoChpDefault {mso-style-type:export-only; font-size:10.0pt; mso-ligatures:none;}
@page WordSection1 {size:612.0pt 792.0pt; margin:72.0pt 72.0pt 72.0pt 72.0pt;}
div.WordSection1 {page:WordSection1;}
/* List Definitions */
@list l0 {mso-list-id:1045523851; mso-list-type:hybrid; mso-list-template-ids:-1204236714 67698703 67698713;}
@list l0:level1 {mso-level-tab-stop:none; mso-level-number-position:left; text-indent:-18.0pt;}
@list l0:level2 {mso-level-number-format:alpha-lower; mso-level-tab-stop:none; text-indent:-18.0pt;}
ol {margin-bottom:0cm;} ul {margin-bottom:0cm;}
--></style><!--[if gte mso 9]><xml>
<o:shapedefaults v:ext="edit" spidmax="1026" />
</xml><![endif]--><!--[if gte mso 9]><xml>
<o:shapelayout v:ext="edit">
<o:idmap v:ext="edit" data="1" />
</o:shapelayout></xml><![endif]-->"""


@dataclass
class _Sent:
    """A message already written, as later replies need it (to reference and to quote)."""

    message_id: str
    references: tuple[str, ...]
    sender: Person
    date: datetime
    subject: str
    text: str


@dataclass
class _Thread:
    subject: str
    customer: Person
    company: Company | None
    mailer: str
    limit: int
    messages: list[_Sent] = field(default_factory=list)

    @property
    def last(self) -> _Sent:
        return self.messages[-1]


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes
    text: bool


class _Generator:
    """Writes N messages in mailbox order; all randomness from one seeded `random.Random`."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.clock = datetime(2026, 1, 5, 8, 30, tzinfo=UTC)
        self.open: list[_Thread] = []
        self.stats: Counter[str] = Counter()
        self.counter = 0

    # -- small random pieces -------------------------------------------------------------------

    def _fill(self, template: str) -> str:
        r = self.rng
        return template.format(
            module=r.choice(_MODULES),
            version=f"{r.randint(1, 4)}.{r.randint(0, 12)}.{r.randint(0, 9)}",
            order=r.randint(100_000, 999_999),
            year=r.choice((2025, 2026)),
            n=r.randint(2, 40),
            amount=r.choice((25, 49, 50, 75, 100, 150)),
            page=r.choice(_PAGES),
            time=f"{r.randint(7, 22)}:{r.randint(0, 59):02d}",
            sku=f"SKU-{r.randint(1000, 9999)}",
            month=r.choice(("Januar", "Februar", "März", "April", "Mai", "Juni")),
        )

    def _stranger(self) -> Person:
        r = self.rng
        first, last = r.choice(_STRANGER_FIRST), r.choice(_STRANGER_LAST)
        plain = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore").decode()
        local = plain.lower() + str(r.randint(1, 99))
        return Person(f"{first} {last}", f"{local}@{r.choice(_STRANGER_DOMAINS)}")

    def _message_id(self, sender: Person, mailer: str) -> str:
        r = self.rng
        if mailer == "outlook":
            host = f"AM{r.randint(0, 9)}PR{r.randint(10, 99)}MB{r.randint(1000, 9999)}"
            return f"<{host}{r.getrandbits(96):024X}@{host}.eurprd0{r.randint(1, 9)}.prod.outlook.com>"
        if mailer == "gmail":
            token = base64.b64encode(r.randbytes(30), altchars=b"+_").decode().rstrip("=")
            return f"<CA+{token}@mail.gmail.com>"
        if mailer == "apple":
            u = f"{r.getrandbits(128):032X}"
            return f"<{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:]}@{sender.domain}>"
        return f"<{r.getrandbits(64):016x}.{r.getrandbits(32):08x}@{sender.domain}>"

    def _paragraphs(self, pool: tuple[str, ...], count: int) -> list[str]:
        r = self.rng
        return [" ".join(self._fill(r.choice(pool)) for _ in range(r.randint(2, 5))) for _ in range(max(1, count))]

    # -- bodies ---------------------------------------------------------------------------------

    def _new_text(self, author: Person, reader: Person | None, pool: tuple[str, ...], company: Company | None) -> str:
        """Greeting, a few paragraphs, sign-off and signature (our staff sign as the consultancy)."""
        r = self.rng
        greeting = r.choice((f"Hi {reader.first}," if reader else "Hello,", "Hello,", "Dear PSP team,", "Hallo,"))
        paragraphs = self._paragraphs(pool, r.randint(1, 4))
        if r.random() < 0.15:
            paragraphs.append(self._fill(r.choice(_UTF8_EXTRAS + _CP1252_EXTRAS)))
        closing = r.choice(("Thanks,", "Best regards,", "Kind regards,", "Viele Grüße", "Cordialement,"))
        body = [greeting, *(textwrap.fill(p, 72) for p in paragraphs), f"{closing}\n{author.first}"]
        if company is not None:
            signature = f"-- \n{author.name}\n{company.name}\nTel. +44 20 7946 {r.randint(0, 9999):04d}\n"
            signature += f"https://www.{company.domain}"
        elif author.domain == STAFF_DOMAIN:
            signature = f"-- \n{author.name}\nPSP Consult – shop support\nhttps://www.{STAFF_DOMAIN}"
        else:
            signature = f"-- \n{author.name}\nSent from my phone"
        text = "\n\n".join(body) + "\n\n" + signature + "\n"
        if company is not None and company.disclaimer:
            text += "\n" + textwrap.fill(_DISCLAIMER, 72) + "\n"
        return text

    def _quote(self, parent: _Sent, style: str) -> str:
        lines = parent.text.splitlines()[:QUOTE_MAX_LINES]
        when = format_datetime(parent.date)
        if style == "outlook":
            header = (
                f"-----Original Message-----\nFrom: {parent.sender.name} <{parent.sender.address}>\n"
                f"Sent: {when}\nTo: {SUPPORT.name} <{SUPPORT.address}>\nSubject: {parent.subject}\n\n"
            )
            return header + "\n".join(lines) + "\n"
        return f"On {when}, {parent.sender.name} <{parent.sender.address}> wrote:\n" + "".join(
            f"> {line}\n" if line else ">\n" for line in lines
        )

    def _html(self, new: str, quoted: str, style: str) -> str:
        def paragraphs(text: str, css: str) -> str:
            blocks = [html.escape(block).replace("\n", "<br>\n") for block in text.split("\n\n") if block.strip()]
            return "".join(f'<p class="{css}">{block}<o:p></o:p></p>\n' for block in blocks)

        head = _OUTLOOK_STYLE if style == "outlook" else "<style>body{font-family:Arial,sans-serif}</style>"
        parts = [
            '<html xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office">',
            f'<head><meta http-equiv="Content-Type" content="text/html; charset={_META_CHARSET}">{head}</head>',
            '<body lang="EN-GB" link="#0563C1" vlink="#954F72"><div class="WordSection1">',
            paragraphs(new, "MsoNormal"),
        ]
        if quoted:
            parts.append(
                '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">'
                f'<blockquote style="margin:0 0 0 .8ex;border-left:1px #ccc solid;padding-left:1ex">'
                f"{paragraphs(quoted, 'MsoNormal')}</blockquote></div>"
            )
        parts.append("</div></body></html>\n")
        return "\n".join(parts)

    # -- MIME -------------------------------------------------------------------------------

    def _boundary(self) -> str:
        return f"----=_Part_{self.rng.getrandbits(64):016x}_{self.counter}"

    def _charset(self, text: str) -> str:
        """A charset that can hold the text, weighted as European clients still send them."""
        candidates = ["utf-8", "utf-8"]
        candidates += [charset for charset in ("iso-8859-1", "windows-1252") if _fits(text, charset)]
        if text.isascii():
            candidates.append("us-ascii")
        charset = self.rng.choice(candidates)
        self.stats[f"charset:{charset}"] += 1
        return charset

    def _encoding(self, charset: str) -> str:
        if charset == "us-ascii":
            encoding = "7bit"
        else:
            encoding = self.rng.choices(("quoted-printable", "base64", "8bit"), weights=(5, 3, 2))[0]
        self.stats[f"cte:{encoding}"] += 1
        return encoding

    @staticmethod
    def _text_part(text: str, subtype: str, charset: str, encoding: str) -> tuple[list[str], bytes]:
        """Encode a text part; an HTML part's <meta> names the same charset as its MIME header."""
        if subtype == "html":
            text = text.replace(_META_CHARSET, charset)
        data = text.encode(charset)
        if encoding == "quoted-printable":
            body = quopri.encodestring(data)
        elif encoding == "base64":
            body = base64.encodebytes(data)
        else:
            body = data if data.endswith(b"\n") else data + b"\n"
        headers = [f'Content-Type: text/{subtype}; charset="{charset}"', f"Content-Transfer-Encoding: {encoding}"]
        return headers, body

    def _attachment(self, sender: Person) -> Attachment:
        r = self.rng
        size = r.randint(ATTACHMENT_MIN_BYTES, ATTACHMENT_MAX_BYTES)
        kind = r.choices(("pdf", "png", "csv"), weights=(4, 4, 2))[0]
        self.stats[f"attachment:{kind}"] += 1
        day = self.clock.strftime("%Y-%m-%d")
        if kind == "pdf":
            name = r.choice((f"invoice-{day}.pdf", "Rechnung März.pdf", f"quote-{r.randint(100, 999)}.pdf"))
            data = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + r.randbytes(size - 24) + b"\n%%EOF\n"
            return Attachment(name, "application/pdf", data, text=False)
        if kind == "png":
            name = r.choice((f"screenshot-{day}.png", f"Bildschirmfoto {day} um 10.{r.randint(10, 59)}.png"))
            return Attachment(name, "image/png", b"\x89PNG\r\n\x1a\n" + r.randbytes(size - 8), text=False)
        rows = ["order_id,date,sku,quantity,unit_price,customer_email,status"]
        length = len(rows[0])
        while length < size:
            row = (
                f"{r.randint(100_000, 999_999)},{day},SKU-{r.randint(1000, 9999)},{r.randint(1, 12)},"
                f"{r.randint(1, 500)}.{r.randint(0, 99):02d},customer{r.randint(1, 99_999)}@{sender.domain},"
                f"{r.choice(('paid', 'shipped', 'cancelled', 'refunded', 'pending'))}"
            )
            rows.append(row)
            length += len(row) + 1
        return Attachment(f"orders-export-{day}.csv", "text/csv", ("\n".join(rows) + "\n").encode(), text=True)

    def _attachment_part(self, attachment: Attachment) -> tuple[list[str], bytes]:
        name = attachment.filename
        if name.isascii():
            type_name, disposition = f'name="{name}"', f'filename="{name}"'
        else:  # Outlook style: RFC 2047 in the type, RFC 2231 in the disposition
            type_name = f'name="{Header(name, "utf-8").encode()}"'
            disposition = f"filename*=utf-8''{quote(name)}"
        charset = '; charset="utf-8"' if attachment.text else ""
        encoding = "base64"
        if attachment.text:
            encoding = self.rng.choice(("base64", "quoted-printable", "7bit"))
        if encoding == "base64":
            body = base64.encodebytes(attachment.data)
        elif encoding == "quoted-printable":
            body = quopri.encodestring(attachment.data)
        else:
            body = attachment.data
        headers = [
            f"Content-Type: {attachment.content_type}{charset}; {type_name}",
            f"Content-Disposition: attachment; {disposition}",
            f"Content-Transfer-Encoding: {encoding}",
        ]
        return headers, body

    def _multipart(self, subtype: str, parts: list[tuple[list[str], bytes]]) -> tuple[list[str], bytes]:
        boundary = self._boundary()
        chunks = [b"This is a multi-part message in MIME format.\n"]
        for headers, body in parts:
            chunks.append(f"\n--{boundary}\n".encode() + "\n".join(headers).encode() + b"\n\n" + body)
        chunks.append(f"\n--{boundary}--\n".encode())
        return [f'Content-Type: multipart/{subtype}; boundary="{boundary}"'], b"".join(chunks)

    # -- headers --------------------------------------------------------------------------------

    def _encoded(self, text: str, name: str) -> str:
        if text.isascii():
            return text
        self.stats["rfc2047:" + name.lower()] += 1
        charset = "iso-8859-1" if self.rng.random() < 0.3 and _fits(text, "iso-8859-1") else "utf-8"
        return Header(text, charset, header_name=name).encode(linesep="\n")

    def _address(self, person: Person) -> str:
        if person.name.isascii():
            return formataddr((person.name, person.address))
        return formataddr((person.name, person.address), charset="utf-8")

    def _transport_headers(self, sender: Person, verified: bool, when: datetime) -> list[str]:
        """What our MX and the sender's server add: Received, Authentication-Results, DKIM."""
        r = self.rng
        domain = sender.domain
        ip = f"203.0.113.{r.randint(1, 254)}"
        stamp = format_datetime(when.astimezone(UTC) + timedelta(seconds=r.randint(1, 30)))
        verdict = "pass" if verified else "fail"
        body_hash = base64.b64encode(r.randbytes(32)).decode()
        signature = base64.b64encode(r.randbytes(256)).decode()
        signature_lines = "\n\t ".join(signature[i : i + 70] for i in range(0, len(signature), 70))
        return [
            f"Return-Path: <{sender.address}>",
            f"Delivered-To: {SUPPORT_ADDRESS}",
            f"Received: from mail.{domain} (mail.{domain} [{ip}])\n\tby {MX_HOST} (Postfix) with ESMTPS id "
            f"{r.getrandbits(40):010X}\n\tfor <{SUPPORT_ADDRESS}>; {stamp}",
            f"Authentication-Results: {MX_HOST};\n\tdkim={verdict} (2048-bit key) header.d={domain} "
            f"header.s=s1 header.b={signature[:8]};\n\tspf=pass (sender SPF authorized) smtp.mailfrom={domain};"
            f"\n\tdmarc={verdict} (p=QUARANTINE sp=NONE) header.from={domain}",
            f"Received: from [10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}]\n\tby mail.{domain} "
            f"with ESMTPSA id {r.getrandbits(32):08x}; {stamp}",
            f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain}; s=s1;\n\tt={int(when.timestamp())}; "
            f"h=from:to:subject:date:message-id:mime-version:content-type;\n\tbh={body_hash};\n\tb={signature_lines}",
        ]

    def _mailer_headers(self, mailer: str) -> list[str]:
        r = self.rng
        if mailer == "outlook":
            index = base64.b64encode(r.randbytes(22)).decode()
            return ["X-Mailer: Microsoft Outlook 16.0", f"Thread-Index: {index}", "Content-Language: en-gb"]
        if mailer == "thunderbird":
            return ["User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.6.0"]
        if mailer == "apple":
            return ["X-Mailer: Apple Mail (2.3774.300.61.1.2)"]
        return []

    # -- one message ----------------------------------------------------------------------------

    def _compose(
        self,
        *,
        sender: Person,
        to: Person,
        cc: Person | None,
        subject: str,
        message_id: str,
        parent: _Sent | None,
        references: tuple[str, ...],
        text: str,
        quoted: str,
        mailer: str,
        verified: bool,
        extra_headers: list[str],
        attachments: list[Attachment],
    ) -> bytes:
        r = self.rng
        zone = timezone(timedelta(hours=r.choice((0, 1, 1, 2, -5))))
        when = self.clock.astimezone(zone)
        headers = self._transport_headers(sender, verified, when)
        headers += [
            f"From: {self._address(sender)}",
            f"To: {self._address(to)}",
            *([f"Cc: {self._address(cc)}"] if cc else []),
            f"Subject: {self._encoded(subject, 'Subject')}",
            f"Date: {format_datetime(when)}",
            f"Message-ID: {message_id}",
        ]
        if parent is not None:
            headers.append(f"In-Reply-To: {parent.message_id}")
            headers.append("References: " + "\n ".join(references))
        headers += ["MIME-Version: 1.0", *self._mailer_headers(mailer), *extra_headers]

        full_text = text + ("\n" + quoted if quoted else "")
        charset = self._charset(full_text)
        encoding = self._encoding(charset)
        body_part = self._text_part(full_text, "plain", charset, encoding)
        html_rate = {"outlook": 0.95, "gmail": 0.9, "apple": 0.6, "thunderbird": 0.2}.get(mailer, 0.5)
        if r.random() < html_rate:
            self.stats["structure:alternative"] += 1
            html_part = self._text_part(self._html(text, quoted, mailer), "html", charset, encoding)
            body_part = self._multipart("alternative", [body_part, html_part])
        else:
            self.stats["structure:plain"] += 1
        if attachments:
            self.stats["structure:attachments"] += 1
            body_part = self._multipart("mixed", [body_part, *(self._attachment_part(a) for a in attachments)])
        part_headers, body = body_part
        head = "\n".join(headers + part_headers) + "\n\n"
        return head.encode("ascii") + body

    def _attachments_for(self, sender: Person) -> list[Attachment]:
        if self.rng.random() >= ATTACHMENT_RATE:
            return []
        count = 2 if self.rng.random() < 0.2 else 1
        return [self._attachment(sender) for _ in range(count)]

    def next_message(self) -> tuple[str, bytes]:
        """The next message of the mailbox: (Message-ID, raw bytes with LF line ends)."""
        r = self.rng
        self.counter += 1
        self.clock += timedelta(seconds=max(5, int(r.expovariate(1 / MEAN_GAP_SECONDS))))
        waiting_on_client = [t for t in self.open[-40:] if t.last.sender.domain == STAFF_DOMAIN]
        if waiting_on_client and r.random() < AUTO_REPLY_RATE:
            return self._auto_reply(r.choice(waiting_on_client))
        replyable = self.open[-40:]
        if replyable and r.random() < REPLY_RATE:
            return self._reply(r.choice(replyable))
        return self._new_thread()

    def _new_thread(self) -> tuple[str, bytes]:
        r = self.rng
        company: Company | None
        if r.random() < STRANGER_RATE:
            company, customer, mailer = None, self._stranger(), r.choice(_STRANGER_MAILERS)
            subject = self._fill(r.choice(_STRANGER_SUBJECTS))
            self.stats["kind:stranger"] += 1
        else:
            company = r.choice(CLIENTS)
            customer, mailer = r.choice(company.people), company.mailer
            subject = self._fill(r.choice(_NEW_SUBJECTS))
            self.stats["kind:client-new"] += 1
        limit = r.choices((1, 2, 3, 5, 8, 12), weights=(3, 4, 4, 3, 2, 1))[0]
        thread = _Thread(subject, customer, company, mailer, limit)
        text = self._new_text(customer, None, _CLIENT_SENTENCES, company)
        message_id = self._message_id(customer, mailer)
        raw = self._compose(
            sender=customer,
            to=SUPPORT,
            cc=None,
            subject=subject,
            message_id=message_id,
            parent=None,
            references=(),
            text=text,
            quoted="",
            mailer=mailer,
            verified=r.random() >= UNVERIFIED_RATE,
            extra_headers=[],
            attachments=self._attachments_for(customer),
        )
        thread.messages.append(_Sent(message_id, (), customer, self.clock, subject, text))
        self._keep_open(thread)
        return message_id, raw

    def _reply(self, thread: _Thread) -> tuple[str, bytes]:
        r = self.rng
        parent = thread.last
        from_staff = parent.sender.domain != STAFF_DOMAIN and r.random() < 0.7
        if parent.sender.domain == STAFF_DOMAIN:
            from_staff = r.random() < 0.15  # a staff follow-up before the client answers
        if from_staff:
            sender, to, cc, mailer, company = r.choice(STAFF), thread.customer, SUPPORT, "thunderbird", None
            text = self._new_text(sender, thread.customer, _STAFF_SENTENCES, None)
            self.stats["kind:staff-reply"] += 1
        else:
            sender, to, cc, mailer, company = thread.customer, SUPPORT, None, thread.mailer, thread.company
            pool = _FOLLOW_UP_SENTENCES if r.random() < 0.6 else _CLIENT_SENTENCES
            text = self._new_text(
                sender, parent.sender if parent.sender.domain == STAFF_DOMAIN else None, pool, company
            )
            self.stats["kind:client-reply"] += 1
        prefix = "RE: " if mailer == "outlook" else "Re: "
        if mailer == "outlook" and company is not None and company.domain.startswith("acme"):
            prefix = "AW: "  # a German Outlook
        if r.random() < 0.05:
            prefix += prefix  # some clients stack prefixes
        subject = prefix + thread.subject
        references = (*parent.references[-9:], parent.message_id)
        message_id = self._message_id(sender, mailer)
        quoted = self._quote(parent, "outlook" if mailer == "outlook" else "plain")
        raw = self._compose(
            sender=sender,
            to=to,
            cc=cc,
            subject=subject,
            message_id=message_id,
            parent=parent,
            references=references,
            text=text,
            quoted=quoted,
            mailer=mailer,
            verified=from_staff or r.random() >= UNVERIFIED_RATE,
            extra_headers=[],
            attachments=self._attachments_for(sender),
        )
        thread.messages.append(_Sent(message_id, references, sender, self.clock, subject, text + "\n" + quoted))
        if len(thread.messages) >= thread.limit:
            self.open.remove(thread)
        else:
            self._keep_open(thread)
        return message_id, raw

    def _auto_reply(self, thread: _Thread) -> tuple[str, bytes]:
        """An out-of-office answer to our reply: noise that psp must store as `ignored`."""
        r = self.rng
        parent, sender = thread.last, thread.customer
        back = (self.clock + timedelta(days=r.randint(2, 14))).strftime("%d %B %Y")
        text = (
            f"Thank you for your message. I am out of the office until {back} with limited access to e-mail.\n"
            f"For urgent matters please contact our office.\n\nIch bin bis {back} nicht im Büro.\n\n{sender.name}\n"
        )
        if thread.mailer == "outlook":
            subject, extra = f"Automatic reply: {parent.subject}", ["X-Auto-Response-Suppress: All"]
        else:
            subject, extra = f"Out of office: {parent.subject}", ["Auto-Submitted: auto-replied"]
        self.stats["kind:auto-reply"] += 1
        message_id = self._message_id(sender, thread.mailer)
        raw = self._compose(
            sender=sender,
            to=parent.sender,
            cc=None,
            subject=subject,
            message_id=message_id,
            parent=parent,
            references=(*parent.references[-9:], parent.message_id),
            text=text,
            quoted="",
            mailer=thread.mailer,
            verified=True,
            extra_headers=extra,
            attachments=[],
        )
        return message_id, raw

    def _keep_open(self, thread: _Thread) -> None:
        """Most recently active last; old threads fall out, as conversations go quiet."""
        if thread in self.open:
            self.open.remove(thread)
        self.open.append(thread)
        if len(self.open) > OPEN_THREADS_KEPT:
            del self.open[0]


def _fits(text: str, charset: str) -> bool:
    try:
        text.encode(charset)
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class Corpus:
    """A generated mailbox on disk: all messages in one file, in mailbox order, and their index."""

    directory: Path
    sizes: tuple[int, ...]
    message_ids: tuple[str, ...]
    stats: dict[str, int]
    wire_bytes: int
    """Total size as an IMAP server serves it (CRLF line ends): what a FETCH BODY[] transfers."""

    @property
    def count(self) -> int:
        return len(self.sizes)

    @property
    def disk_bytes(self) -> int:
        return sum(self.sizes)

    def messages(self) -> Iterator[bytes]:
        """Each raw message in order, read sequentially so the whole corpus is never in memory."""
        with (self.directory / "messages.bin").open("rb") as data:
            for size in self.sizes:
                yield data.read(size)


def corpus_directory(cache_dir: Path, count: int, seed: int) -> Path:
    return cache_dir / f"corpus-v{GENERATOR_VERSION}-n{count}-seed{seed}"


def load_or_generate(count: int, seed: int = DEFAULT_SEED, cache_dir: Path = DEFAULT_CACHE_DIR) -> Corpus:
    """The cached corpus for (count, seed), generated first if it is not there yet.

    Written into a temporary folder and renamed into place, so an interrupted run never leaves a
    half-written corpus that a later run would take for complete.
    """
    directory = corpus_directory(cache_dir, count, seed)
    if not (directory / "index.json").exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=directory.name + ".", dir=cache_dir))
        try:
            _generate(count, seed, staging)
            shutil.rmtree(directory, ignore_errors=True)
            staging.rename(directory)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    index = json.loads((directory / "index.json").read_text())
    return Corpus(
        directory=directory,
        sizes=tuple(index["sizes"]),
        message_ids=tuple(index["message_ids"]),
        stats=index["stats"],
        wire_bytes=index["wire_bytes"],
    )


def _generate(count: int, seed: int, directory: Path) -> None:
    generator = _Generator(seed)
    sizes: list[int] = []
    message_ids: list[str] = []
    wire_bytes = 0
    with (directory / "messages.bin").open("wb") as data:
        for _ in range(count):
            message_id, raw = generator.next_message()
            data.write(raw)
            sizes.append(len(raw))
            message_ids.append(message_id)
            wire_bytes += len(raw) + raw.count(b"\n")
    index = {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "count": count,
        "wire_bytes": wire_bytes,
        "stats": dict(sorted(generator.stats.items())),
        "sizes": sizes,
        "message_ids": message_ids,
    }
    (directory / "index.json").write_text(json.dumps(index))


def main() -> None:
    """Build (or find) a cached corpus and describe it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    parser.add_argument("--sample", type=Path, help="also write the first 50 messages as .eml files here")
    args = parser.parse_args()
    corpus = load_or_generate(args.messages, args.seed, args.cache_dir)
    print(
        f"{corpus.directory}: {corpus.count} messages, {corpus.disk_bytes / 1e6:.1f} MB on disk, "
        f"{corpus.wire_bytes / 1e6:.1f} MB as fetched (avg {corpus.wire_bytes / corpus.count / 1e3:.1f} KB)"
    )
    for key, value in corpus.stats.items():
        print(f"  {key}: {value}")
    if args.sample:
        args.sample.mkdir(parents=True, exist_ok=True)
        for number, raw in zip(range(50), corpus.messages(), strict=False):
            (args.sample / f"{number:03d}.eml").write_bytes(raw)


if __name__ == "__main__":
    main()
