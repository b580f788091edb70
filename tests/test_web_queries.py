"""The web's own queries agree with the ledger's definitions, and the chart's geometry is sound."""

from __future__ import annotations

from datetime import date, timedelta

from sqlmodel import Session

from ledger.models import Client
from ledger.posting import approve, buy_block, reverse_entry
from ledger.reports import ledger_lines, tracking_report
from ledger.statements import StatementMonth
from psp.config import Settings
from psp.web import queries
from psp.web.chart import MAX_POINTS, balance_chart
from tests import builders

STAFF = "anna@example.test"


def _history(session: Session, settings: Settings) -> Client:
    """Blocks, charges, free items and a reversal over three months, several entries a day."""
    acme = builders.client(session, "Acme Shop")
    first = date(2026, 8, 1)
    buy_block(session, STAFF, acme, settings.policy, minutes=360, ref="INV-1", on=first)
    for n in range(130):
        day = first + timedelta(days=n * 90 // 130)
        proposal = builders.proposal(session, acme, 5 + n % 4 * 5, subject=f"Item {n}", on=day)
        approved = approve(session, STAFF, proposal.id or 0, settings.policy)
        if n == 40 and approved.entry is not None:
            reverse_entry(session, STAFF, approved.entry.id or 0, "wrong client", day + timedelta(days=2))
        if n % 45 == 0:
            buy_block(session, STAFF, acme, settings.policy, minutes=360, ref=f"INV-{n}", on=day)
    session.commit()
    return acme


def test_report_pages_carry_the_ledgers_running_balance(session: Session, settings: Settings) -> None:
    acme = _history(session, settings)
    expected = list(reversed(tracking_report(ledger_lines(session, acme))))  # newest first
    first_page = queries.report_page(session, acme, None, 1)
    assert first_page.total == len(expected)
    pages = [queries.report_page(session, acme, None, n).rows for n in range(1, first_page.pages + 1)]
    assert [row for page in pages for row in page] == expected
    assert queries.report_page(session, acme, None, first_page.pages + 1).rows == []
    for month in (date(2026, 8, 1), date(2026, 9, 17), date(2026, 12, 1)):
        cut = queries.report_page(session, acme, month, 1)
        in_month = [r for r in expected if (r.date.year, r.date.month) == (month.year, month.month)]
        assert cut.rows == in_month[: queries.PAGE_SIZE]
        cut_to = StatementMonth(month.year, month.month)
        assert list(reversed(tracking_report(ledger_lines(session, acme, cut_to.first, cut_to.last)))) == in_month


def test_balance_series_ends_at_the_balance(session: Session, settings: Settings) -> None:
    acme = _history(session, settings)
    lines = ledger_lines(session, acme)
    series = queries.balance_series(session, acme)
    assert series[-1] == (lines[-1].date, lines[-1].balance)
    by_day = {line.date: line.balance for line in lines}  # the last line of each day wins
    assert dict(series) == by_day


def test_review_queue_pages_group_by_client_and_thread(session: Session, settings: Settings) -> None:
    acme, bluebell = builders.client(session, "Acme Shop"), builders.client(session, "Bluebell Teas")
    for n in range(queries.QUEUE_PAGE_SIZE + 10):
        owner = bluebell if n % 2 else acme
        builders.proposal(session, owner, 10, subject=f"Request {n}", thread=f"t{n % 7}", on=date(2026, 11, 1 + n % 20))
    session.commit()
    first = queries.pending_queue(session)
    assert (first.total, first.pages, len(first.items)) == (queries.QUEUE_PAGE_SIZE + 10, 2, queries.QUEUE_PAGE_SIZE)
    both = first.items + queries.pending_queue(session, page=2).items
    starts = {(i.client, i.thread_key): i.occurred_at for i in reversed(both)}  # each thread's oldest item
    keys = [(i.client, starts[i.client, i.thread_key], i.thread_key, i.occurred_at, i.id) for i in both]
    assert keys == sorted(keys)
    only = queries.pending_queue(session, bluebell)
    assert {i.client for i in only.items} == {"bluebell-teas"}
    assert queries.pending_queue(session, unmatched=True).total == 0


def test_chart_geometry() -> None:
    assert balance_chart([]) is None
    single = balance_chart([(date(2026, 1, 1), 360)])
    assert single is not None
    assert single.points
    days = [(date(2020, 1, 1) + timedelta(days=n), 360 - n) for n in range(2000)]
    chart = balance_chart(days)
    assert chart is not None
    assert chart.points.count(" ") < 2 * (MAX_POINTS + 1)  # thinned: a step is two points
    assert chart.last_balance == days[-1][1]
    assert chart.y_ticks[0].label == str(360 - 1999)
    top, bottom = 12, chart.height - 28
    assert top <= chart.zero_y <= bottom  # zero inside the plot, the overdraft below it
    xs = [float(p.split(",")[0]) for p in chart.points.split()]
    assert xs == sorted(xs)
