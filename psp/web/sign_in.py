"""Clients sign in by mail: an address we know gets a one-time link to its client's report.

The page answers the same whether or not the address is known, so it reveals nobody's clients.
Requests are rate-limited per address and client IP like staff logins. The mailed link works
once, for `[web].sign_in_minutes`, and is exchanged for a report link of `[web].signed_in_hours`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, BackgroundTasks, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session, col

from ledger.clients import normalise_address
from ledger.errors import InvalidInputError
from ledger.models import Client, ClientEmail
from notify.compose import render as render_mail
from notify.mailer import Composed, mailer_for
from notify.outbox import deliver_pending, record
from psp import db
from psp.config import Settings
from psp.web.accounts import recent_failures
from psp.web.deps import State, redirect, render
from psp.web.errors import TooManyAttemptsError
from psp.web.links import SIGN_IN, issue_link, redeem_sign_in
from psp.web.models import LoginAttempt
from psp.web.security import check_csrf, csrf_token

router = APIRouter()


def request_sign_in(session: Session, settings: Settings, email: str, address: str, now: datetime) -> int | None:
    """Record the request; for a known address, issue a sign-in link and its mail (pending).

    Returns the mail's id, or None when the address is no client's.
    """
    web = settings.web
    key = f"{SIGN_IN}:{email.strip().lower()}"[:320]
    since = now - timedelta(minutes=web.login_window_minutes)
    if recent_failures(session, key, address, since) >= web.login_attempts:  # every request is recorded as one
        raise TooManyAttemptsError(f"too many requests: try again in {web.login_window_minutes} minutes")
    session.add(LoginAttempt(email=key, address=address[:64], at=now, succeeded=False))
    try:
        wanted = normalise_address(email)
    except InvalidInputError:
        return None
    client = session.execute(
        sa.select(Client)
        .join(ClientEmail, col(ClientEmail.client_id) == Client.id)
        .where(col(ClientEmail.address) == wanted)
    ).scalar_one_or_none()
    if client is None:
        return None
    link = issue_link(session, SIGN_IN, client, web, lifetime=timedelta(minutes=web.sign_in_minutes), purpose=SIGN_IN)
    context = {"name": client.name, "url": link.url, "minutes": web.sign_in_minutes, "sender": settings.smtp.sender}
    mail = Composed(
        kind="sign-in",
        to=(wanted,),
        cc=(),
        subject=f"Your link to the Support Tracking Report of {client.name}",
        text=render_mail("sign_in.txt", context),
        html=render_mail("sign_in.html", context),
    )
    return record(session, mail, settings, client_id=client.id)


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_form(request: Request) -> Response:
    return render(request, "portal/sign_in.html", {"csrf": csrf_token(request), "sent": False})


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in(
    request: Request,
    state: State,
    background: BackgroundTasks,
    email: Annotated[str, Form(max_length=320)],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    address = request.client.host if request.client else "unknown"
    try:
        with db.transaction(state.engine) as session:  # committed also when refused: the request counts
            mail_id = request_sign_in(session, state.settings, email, address, datetime.now(UTC))
    except TooManyAttemptsError as exc:
        context = {"csrf": csrf_token(request), "sent": False, "error": str(exc)}
        return render(request, "portal/sign_in.html", context, status.HTTP_429_TOO_MANY_REQUESTS)
    if mail_id is not None:  # sent after the answer, so a known address takes no longer than another
        background.add_task(deliver_pending, state.engine, mailer_for(state.settings.smtp), only=(mail_id,))
    return render(request, "portal/sign_in.html", {"csrf": csrf_token(request), "sent": True})


@router.get("/sign-in/{token}")
def use_sign_in_link(state: State, token: str) -> Response:
    with db.transaction(state.engine) as session:
        link = redeem_sign_in(session, state.settings.web, token, datetime.now(UTC))
    if link is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    return redirect(link.path)
