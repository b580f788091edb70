"""What the routes share: the application state, database sessions, rendering, the staff login."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.engine import Engine
from sqlmodel import Session

from psp.config import Settings
from psp.web.security import csrf_token


@dataclass(frozen=True)
class WebState:
    """Built once by `create_app`: settings, the engines and the templates.

    Attributes:
      read_engine: for pages that only read. On SQLite it starts no transaction of its own, so
        readers never queue behind the write lock (BEGIN IMMEDIATE) that the ledger engine takes.
    """

    settings: Settings
    engine: Engine
    read_engine: Engine
    templates: Jinja2Templates


def web_state(request: Request) -> WebState:
    state = request.app.state.psp
    assert isinstance(state, WebState)
    return state


State = Annotated[WebState, Depends(web_state)]


def read_session(request: Request) -> Iterator[Session]:
    with Session(web_state(request).read_engine) as session:
        yield session


ReadDb = Annotated[Session, Depends(read_session)]


@dataclass(frozen=True)
class StaffUser:
    id: int
    email: str


class LoginRequiredError(HTTPException):
    """No staff session: the browser is sent to the login page."""

    def __init__(self) -> None:
        super().__init__(status.HTTP_303_SEE_OTHER, headers={"Location": "/staff/login"})


def current_staff(request: Request) -> StaffUser:
    """The logged-in staff member from the signed session cookie, or a redirect to the login page.

    The cookie is renewed with each response, so its own age only measures idleness; the login
    time inside it ends the session `[web].session_hours` after the login, however busy.
    """
    staff_id, email = request.session.get("staff_id"), request.session.get("staff_email")
    login_at = request.session.get("login_at")
    if not isinstance(staff_id, int) or not isinstance(email, str) or not isinstance(login_at, int | float):
        raise LoginRequiredError
    if time.time() - login_at > web_state(request).settings.web.session_hours * 3600:
        request.session.clear()
        raise LoginRequiredError
    return StaffUser(staff_id, email)


Staff = Annotated[StaffUser, Depends(current_staff)]


def flash(request: Request, message: str, kind: str = "ok") -> None:
    """A one-line message for the next page the staff member sees (kept in the session)."""
    request.session.setdefault("flash", []).append([kind, message])
    request.session["flash"] = request.session["flash"][-5:]


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    state = web_state(request)
    return state.templates.TemplateResponse(
        request, name, {"now": datetime.now(state.settings.policy.zone), **context}, status_code=status_code
    )


def render_staff(
    request: Request, staff: StaffUser | None, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    """A staff page: the CSRF token for its forms and any flashed messages."""
    messages = request.session.pop("flash", [])
    return render(
        request, name, {"staff": staff, "csrf": csrf_token(request), "messages": messages, **context}, status_code
    )


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=status.HTTP_303_SEE_OTHER)
