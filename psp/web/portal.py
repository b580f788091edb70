"""The client's pages, reached only through their report link: read-only, one client each.

Every route resolves the token first; an unknown, expired or revoked token, or a statement of
another client, answers 404, so a link never reveals anything about other clients.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from ledger.models import Client
from ledger.report_formats import hours, report_csv, time_cell
from ledger.reports import balance, ledger_lines, tracking_report
from ledger.statements import StatementMonth
from notify.models import Statement
from psp.web import queries
from psp.web.chart import balance_chart
from psp.web.deps import ReadDb, render
from psp.web.links import client_for_token
from psp.web.security import STATEMENT_CSP

router = APIRouter()


def _client(session: Session, token: str) -> Client:
    client = client_for_token(session, token, datetime.now(UTC))
    if client is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    return client


def _month(text: str | None) -> date | None:
    """`2026-10` → the first of that month; anything malformed is simply no filter."""
    if not text:
        return None
    try:
        return date.fromisoformat(f"{text}-01")
    except ValueError:
        return None


@router.get("/r/{token}", response_class=HTMLResponse)
def report(
    request: Request,
    session: ReadDb,
    token: str,
    month: Annotated[str | None, Query(max_length=7)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    client = _client(session, token)
    chosen = _month(month)
    summary = balance(session, client)
    series = queries.balance_series(session, client)
    months = sorted({day.strftime("%Y-%m") for day, _ in series}, reverse=True)
    return render(
        request,
        "portal/report.html",
        {
            "client": client,
            "token": token,
            "summary": summary,
            "chart": balance_chart(series),
            "months": months,
            "month": chosen.strftime("%Y-%m") if chosen else "",
            "report": queries.report_page(session, client, chosen, page),
            "statements": queries.statements(session, client),
            "hours": hours,
            "time_cell": time_cell,
        },
    )


@router.get("/r/{token}/report.csv")
def report_download(session: ReadDb, token: str, month: Annotated[str | None, Query(max_length=7)] = None) -> Response:
    client = _client(session, token)
    chosen = _month(month)
    if chosen:
        cut = StatementMonth(chosen.year, chosen.month)
        lines = ledger_lines(session, client, cut.first, cut.last)
    else:
        lines = ledger_lines(session, client)
    rows = tracking_report(lines)
    name = f"support-report-{client.slug}" + (f"-{chosen:%Y-%m}" if chosen else "") + ".csv"
    return Response(
        report_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _statement(session: Session, client: Client, statement_id: int) -> Statement:
    statement = session.get(Statement, statement_id)
    if statement is None or statement.client_id != client.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    return statement


@router.get("/r/{token}/statements/{statement_id}.html")
def statement_html(session: ReadDb, token: str, statement_id: int) -> Response:
    statement = _statement(session, _client(session, token), statement_id)
    return HTMLResponse(statement.html_body, headers={"Content-Security-Policy": STATEMENT_CSP})


@router.get("/r/{token}/statements/{statement_id}.pdf")
def statement_pdf(session: ReadDb, token: str, statement_id: int) -> Response:
    client = _client(session, token)
    statement = _statement(session, client, statement_id)
    name = f"statement-{client.slug}-{statement.month}-v{statement.version}.pdf"
    return Response(
        statement.pdf_attachment,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
