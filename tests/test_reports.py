"""The Support Tracking Report: running balances, date cuts, and its four formats."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

from sqlmodel import Session

from ledger.models import Category
from ledger.posting import approve, buy_block
from ledger.report_formats import report_csv, report_html, report_json, report_table, spreadsheet_safe
from ledger.reports import balance, ledger_lines, tracking_report
from psp.config import Settings
from tests import builders
from tests.builders import STAFF


def _month(session: Session, settings: Settings) -> builders.Client:
    acme = builders.client(session)
    buy_block(session, STAFF, acme, settings.policy, minutes=360, ref=None, on=date(2026, 10, 1))
    for day, minutes, category, subject in (
        (3, 30, Category.BILLABLE, "Checkout broken"),
        (5, 20, Category.MODULE_BUG, "Gift wrap bug"),
        (9, 45, Category.BILLABLE, '=HYPERLINK("http://evil.example","click")'),
        (12, 15, Category.BILLABLE, "<script>alert(1)</script>"),
    ):
        p = builders.proposal(session, acme, minutes, category=category, subject=subject, on=date(2026, 10, day))
        approve(session, STAFF, p.id or 0, settings.policy)
    builders.proposal(session, acme, 25, subject="Still pending", on=date(2026, 10, 20))
    session.commit()
    return acme


def test_running_balance_is_column_d(session: Session, settings: Settings) -> None:
    acme = _month(session, settings)
    rows = tracking_report(ledger_lines(session, acme))
    assert [(r.date.day, r.minutes, r.balance) for r in rows] == [
        (1, -360, 360),
        (3, 30, 330),
        (5, 0, 330),
        (9, 45, 285),
        (12, 15, 270),
    ]
    assert [r.free for r in rows] == [False, False, True, False, False]


def test_a_date_cut_keeps_the_true_running_balance(session: Session, settings: Settings) -> None:
    acme = _month(session, settings)
    rows = tracking_report(ledger_lines(session, acme, date(2026, 10, 4), date(2026, 10, 10)))
    assert [(r.date.day, r.balance) for r in rows] == [(5, 330), (9, 285)]


def test_balance_shows_pending_beside_posted(session: Session, settings: Settings) -> None:
    acme = _month(session, settings)
    summary = balance(session, acme)
    assert (summary.balance_minutes, summary.pending_minutes, summary.projected_minutes) == (270, 25, 245)


def test_csv_neutralises_formulas_and_keeps_numbers(session: Session, settings: Settings) -> None:
    acme = _month(session, settings)
    parsed = list(csv.reader(io.StringIO(report_csv(tracking_report(ledger_lines(session, acme))))))
    assert parsed[0] == ["date", "issue", "channel", "category", "minutes", "balance", "note"]
    assert parsed[1][4] == "-360"  # a number, not text: left alone
    assert parsed[4][1] == '\'=HYPERLINK("http://evil.example","click")'


def test_spreadsheet_safe_covers_every_formula_start() -> None:
    assert [spreadsheet_safe(v) for v in ("=1", "+1", "-1", "@A1", "\t=1", "plain", -5)] == [
        "'=1",
        "'+1",
        "'-1",
        "'@A1",
        "'\t=1",
        "plain",
        -5,
    ]


def test_json_and_html_and_table(session: Session, settings: Settings) -> None:
    acme = _month(session, settings)
    summary = balance(session, acme)
    rows = tracking_report(ledger_lines(session, acme))
    document = json.loads(json.dumps(report_json(acme.slug, summary, rows)))
    assert document["client"] == "acme-shop"
    assert document["balance_minutes"] == 270
    assert document["rows"][1] == {
        "date": "2026-10-03",
        "issue": "Checkout broken",
        "channel": "email",
        "category": "billable",
        "kind": "charge",
        "minutes": 30,
        "balance": 330,
        "note": "billable: 30 min",
    }
    html = report_html(acme.name, summary, rows, date(2026, 10, 31))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html
    assert "270 min (4:30)" in html
    table = report_table(acme.name, summary, rows)
    assert table.splitlines()[3].split()[-2:] == ["cr", "360"]
    assert "no charge" in table.splitlines()[5]
    assert table.splitlines()[-1].startswith("Balance 270 min (4:30); pending review 25 min")


def test_balance_as_of_a_date_matches_the_last_row_up_to_it(session: Session, settings: Settings) -> None:
    acme = _month(session, settings)
    assert balance(session, acme, as_of=date(2026, 10, 9)).balance_minutes == 285
    assert balance(session, acme, as_of=date(2026, 9, 30)).balance_minutes == 0
