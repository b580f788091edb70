"""Staff login and logout. The session is a signed, HttpOnly, SameSite=Strict cookie."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from psp import db
from psp.web.accounts import check_login
from psp.web.deps import State, current_staff, redirect, render_staff
from psp.web.errors import TooManyAttemptsError
from psp.web.security import check_csrf

router = APIRouter()


@router.get("/staff/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    if "staff_id" in request.session:
        return redirect("/staff")
    return render_staff(request, None, "staff/login.html", {"email": ""})


@router.post("/staff/login", response_class=HTMLResponse)
def login(
    request: Request,
    state: State,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1000)],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    address = request.client.host if request.client else "unknown"
    try:
        with db.transaction(state.engine) as session:  # committed also when refused: the attempt counts
            account = check_login(session, state.settings.web, email, password, address, datetime.now(UTC))
            found = (account.id, account.email) if account else None
    except TooManyAttemptsError as exc:
        return render_staff(request, None, "staff/login.html", {"email": email, "error": str(exc)}, 429)
    if found is None:
        error = "wrong e-mail address or password"
        return render_staff(request, None, "staff/login.html", {"email": email, "error": error}, 401)
    staff_id, staff_email = found
    request.session.clear()  # a fresh session and CSRF token on login: nothing from before carries over
    request.session.update({"staff_id": staff_id, "staff_email": staff_email, "login_at": int(time.time())})
    return redirect("/staff/review")


@router.post("/staff/logout")
def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    current_staff(request)
    check_csrf(request, csrf)
    request.session.clear()
    return redirect("/staff/login")
