"""The Support Tracking Report as text table, CSV, JSON and HTML.

CSV cells that a spreadsheet would run as a formula are neutralised: mail subjects come from
clients and strangers, and `=HYPERLINK(...)` in a subject must stay text when staff open the file.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from ledger.reports import Balance, ReportRow
from ledger.tables import text_table

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_templates = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def spreadsheet_safe(value: object) -> object:
    """Prefix text that starts like a formula with an apostrophe; numbers pass unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def hours(minutes: int) -> str:
    """Minutes as h:mm, for people; the data stays in integer minutes."""
    sign = "-" if minutes < 0 else ""
    whole, rest = divmod(abs(minutes), 60)
    return f"{sign}{whole}:{rest:02d}"


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def time_cell(row: ReportRow) -> str:
    """Column C: minutes charged, or a credit marked as such (a block is not time used)."""
    return f"{-row.minutes} cr" if row.minutes < 0 else str(row.minutes)


def _label(row: ReportRow) -> str:
    return "no charge" if row.free else row.category or row.kind


def report_table(client_name: str, summary: Balance, rows: list[ReportRow]) -> str:
    body = text_table(
        ["Date", "Issue", "Channel", "Category", "Time", "PSP Balance"],
        [
            (r.date.isoformat(), _shorten(r.issue, 48), r.channel or "", _label(r), time_cell(r), r.balance)
            for r in rows
        ],
        numeric={4, 5},
    )
    return (
        f"Support Tracking Report — {client_name}\n{body}\n\n"
        f"Balance {summary.balance_minutes} min ({hours(summary.balance_minutes)}); "
        f"pending review {summary.pending_minutes} min; held for project decisions {summary.held_minutes} min"
    )


def report_csv(rows: list[ReportRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["date", "issue", "channel", "category", "minutes", "balance", "note"])
    for r in rows:
        writer.writerow(
            [
                spreadsheet_safe(v)
                for v in (
                    r.date.isoformat(),
                    r.issue,
                    r.channel or "",
                    r.category or r.kind,
                    r.minutes,
                    r.balance,
                    r.note,
                )
            ]
        )
    return out.getvalue()


def report_json(client_slug: str, summary: Balance, rows: list[ReportRow]) -> dict[str, Any]:
    return {
        "client": client_slug,
        "plan": summary.plan,
        "balance_minutes": summary.balance_minutes,
        "pending_minutes": summary.pending_minutes,
        "held_minutes": summary.held_minutes,
        "rows": [
            {
                "date": r.date.isoformat(),
                "issue": r.issue,
                "channel": r.channel,
                "category": r.category,
                "kind": r.kind,
                "minutes": r.minutes,
                "balance": r.balance,
                "note": r.note,
            }
            for r in rows
        ],
    }


def report_html(client_name: str, summary: Balance, rows: list[ReportRow], generated_on: date) -> str:
    return _templates.get_template("report.html").render(
        client_name=client_name,
        summary=summary,
        rows=rows,
        generated_on=generated_on,
        hours=hours,
        label=_label,
        time_cell=time_cell,
    )


def dumps(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)
