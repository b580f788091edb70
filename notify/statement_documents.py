"""A statement's four renderings — text and HTML bodies, CSV and PDF attachments — and their hash.

Rendering is pure: the same statement data gives the same bytes (the PDF's dates come from the
statement month, not the clock), so a snapshot's hash shows that what is stored is what was sent.
"""

from __future__ import annotations

import csv
import hashlib
import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from ledger.report_formats import hours, spreadsheet_safe
from ledger.statements import StatementData, StatementLine
from ledger.tables import text_table
from notify.compose import render
from psp.config import Policy


@dataclass(frozen=True)
class StatementDocuments:
    """What a statement mail carries, and the SHA-256 over all of it (text, HTML, CSV, PDF)."""

    subject: str
    text: str
    html: str
    csv: str
    pdf: bytes
    content_hash: str


def money(cents: int, currency: str) -> str:
    """Minor units as `GBP 1,234.50`; amounts stay integers until printed."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{currency} {sign}{whole:,}.{rest:02d}"


def time_label(line: StatementLine) -> str:
    """Column C as the client reads it: minutes charged, "no charge", or a credit."""
    if line.charged < 0:
        return f"{-line.charged} cr"
    return "no charge" if line.free else str(line.charged)


def category_label(line: StatementLine) -> str:
    if line.kind == "block":
        return "block"
    if line.kind == "reversal":
        return "correction"
    return line.category or ""


def headings(data: StatementData) -> tuple[str, ...]:
    """The seed's columns A–D with channel and category; without a plan there is no balance, only a total."""
    last = "PSP Balance" if data.nonplan is None else "Charged to date"
    return ("Date", "Channel", "Issue", "Category", "Time", last)


def item_rows(data: StatementData) -> list[tuple[str, str, str, str, str, int]]:
    """One row per posted entry of the month, under `headings`."""
    sign = 1 if data.nonplan is None else -1
    return [
        (
            line.date.isoformat(),
            line.channel or "",
            line.subject,
            category_label(line),
            time_label(line),
            sign * line.balance,
        )
        for line in data.lines
    ]


def render_documents(data: StatementData, policy: Policy, sender: str) -> StatementDocuments:
    """Render every part of the statement and hash them together."""
    context = {
        "s": data,
        "summary": _summary(data),
        "headings": headings(data),
        "rows": item_rows(data),
        "table": _text_table(data),
        "free_work": _free_work(data),
        "nonplan": _nonplan(data, policy),
        "sender": sender,
    }
    text = render("statement.txt", context)
    html = render("statement.html", context)
    table = statement_csv(data)
    pdf = statement_pdf(data, policy, sender)
    digest = hashlib.sha256()
    for part in (text.encode(), html.encode(), table.encode(), pdf):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    subject = f"Support statement for {data.month.title}: {data.name}"
    return StatementDocuments(subject, text, html, table, pdf, digest.hexdigest())


def _text_table(data: StatementData) -> str:
    rows = [(d, ch, _shorten(issue, 44), cat, t, b) for d, ch, issue, cat, t, b in item_rows(data)]
    return text_table(headings(data), rows, numeric={4, 5})


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def statement_csv(data: StatementData) -> str:
    """The month as rows a spreadsheet can sum: opening, every item, closing; formulas neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["date", "kind", "channel", "issue", "category", "minutes_charged", "balance_minutes"])
    writer.writerow([data.month.first.isoformat(), "opening", "", "Opening balance", "", 0, data.opening])
    for line in data.lines:
        writer.writerow(
            [
                line.date.isoformat(),
                line.kind,
                line.channel or "",
                spreadsheet_safe(line.subject),
                category_label(line),
                line.charged,
                line.balance,
            ]
        )
    writer.writerow([data.month.last.isoformat(), "closing", "", "Closing balance", "", 0, data.closing])
    return out.getvalue()


# Typography the PDF's built-in font lacks, spelled in characters it has.
_PLAIN = str.maketrans({"—": "-", "–": "-", "‘": "'", "’": "'", "“": '"', "”": '"', "…": "...", "•": "*"})


def pdf_text(text: str) -> str:
    """Text the PDF's built-in Latin-1 font can show: accents kept, other scripts as `?`.

    The text and HTML parts carry every character; the PDF is the printable copy.
    """
    plain = unicodedata.normalize("NFC", text.translate(_PLAIN))
    return plain.encode("latin-1", "replace").decode("latin-1")


def statement_pdf(data: StatementData, policy: Policy, sender: str) -> bytes:
    """A one-or-more-page A4 PDF of the statement, dated at the end of its month (so it is reproducible)."""
    pdf = FPDF(format="A4")
    pdf.set_creation_date(datetime.combine(data.month.last, time(23, 59), UTC))
    pdf.set_title(pdf_text(f"Support statement {data.month.label} {data.name}"))
    pdf.set_author(pdf_text(sender))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()

    def line(text: str, size: float = 10, style: str = "") -> None:
        """A line of text; only one too wide for the page pays for fpdf's (slow) wrapping."""
        pdf.set_font("Helvetica", style=style, size=size)
        text = pdf_text(text)
        if pdf.get_string_width(text) <= pdf.epw:
            pdf.cell(0, size * 0.55, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        else:
            pdf.multi_cell(0, size * 0.55, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    line(f"Support statement for {data.month.title}", 16, "B")
    line(data.name, 12)
    pdf.ln(3)
    for label, value in _summary(data):
        line(f"{label}: {value}")
    pdf.ln(3)
    _pdf_table(pdf, headings(data), item_rows(data))
    pdf.ln(3)
    for text in _free_work(data) + _nonplan(data, policy):
        line(text)
    return bytes(pdf.output())


_COLUMNS = ((20, "L"), (15, "L"), (80, "L"), (25, "L"), (18, "R"), (22, "R"))  # mm, alignment


def _pdf_table(pdf: FPDF, heads: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """One line per row, long issues cut to their column: plain cells, far cheaper than wrapped ones."""
    for n, cells in enumerate((heads, *rows)):
        pdf.set_font("Helvetica", style="B" if n == 0 else "", size=8)
        for (width, align), cell in zip(_COLUMNS, cells, strict=True):
            pdf.cell(width, 5, _fit(pdf, pdf_text(str(cell)), width - 2), border="B", align=align)
        pdf.ln()


def _fit(pdf: FPDF, text: str, width: float) -> str:
    """Text cut with "..." to fit `width` in the current font."""
    if pdf.get_string_width(text) <= width:
        return text
    while text and pdf.get_string_width(text + "...") > width:
        text = text[:-1]
    return text + "..."


def _summary(data: StatementData) -> list[tuple[str, str]]:
    if data.nonplan is not None:
        before, to_date = -data.opening, -data.closing
        return [
            (f"Charged before {data.month.first.isoformat()}", f"{before} min ({hours(before)})"),
            ("Time charged this month", f"{data.nonplan.charged_minutes} min ({hours(data.nonplan.charged_minutes)})"),
            (f"Charged to {data.month.last.isoformat()}", f"{to_date} min ({hours(to_date)})"),
        ]
    return [
        (f"Opening balance on {data.month.first.isoformat()}", f"{data.opening} min ({hours(data.opening)})"),
        ("Time charged this month", f"{data.charged_minutes} min ({hours(data.charged_minutes)})"),
        ("Credited (blocks bought, corrections)", f"{data.credited_minutes} min ({hours(data.credited_minutes)})"),
        (f"Closing balance on {data.month.last.isoformat()}", f"{data.closing} min ({hours(data.closing)})"),
    ]


def _free_work(data: StatementData) -> list[str]:
    lines = [
        f"No charge: {item.date.isoformat()} {item.subject} ({item.category}, {item.work_minutes} min)"
        for item in data.free_items
    ]
    if data.uncharged_contact_minutes:
        minutes = data.uncharged_contact_minutes
        lines.append(f"Contact time we did not charge this month: {minutes} min ({hours(minutes)})")
    return lines


def _nonplan(data: StatementData, policy: Policy) -> list[str]:
    if data.nonplan is None:
        return []
    n = data.nonplan
    rate = money(data.hourly_rate_cents, policy.currency)
    lines = [
        f"Support requests this month: {n.requests}",
        f"Time charged, at least {hours(policy.nonplan_minimum_minutes)} per request: {hours(n.charged_minutes)}",
        f"Amount due: {money(n.amount_due_cents, policy.currency)} (at {rate} per hour)",
    ]
    if n.plan_blocks:
        lines.append(
            f"On a Priority Support Plan this work ({hours(n.work_minutes)}) would have used {n.plan_blocks} "
            f"block(s) of {hours(policy.block_minutes)}: {money(n.plan_cost_cents, policy.currency)}"
        )
    return lines
