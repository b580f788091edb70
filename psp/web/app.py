"""The application factory: `create_app(settings, engine)` builds the whole web shell.

Routes are split by audience (portal for clients, staff pages, login), all rendered on the server
from autoescaping Jinja templates: mail content is always shown as text. The only script is one
static file for keyboard shortcuts; pages work without it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.engine import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from psp import db
from psp.config import Settings
from psp.web import auth, portal, sign_in, staff
from psp.web.deps import WebState, redirect, render
from psp.web.errors import CsrfError
from psp.web.security import SecurityHeaders, session_secret

HERE = Path(__file__).parent
SESSION_COOKIE = "psp_session"


def _read_engine(engine: Engine) -> Engine:
    """On SQLite, a second engine whose reads take no write lock (WAL lets them run beside writers)."""
    if engine.dialect.name != "sqlite":
        return engine
    return sa.create_engine(engine.url, connect_args={"timeout": db.SQLITE_BUSY_TIMEOUT_S})


def _templates(settings: Settings) -> Jinja2Templates:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    zone = settings.policy.zone

    def local(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        return moment.astimezone(zone).strftime(fmt) if moment else ""

    env.filters["local"] = local
    return Jinja2Templates(env=env)


def create_app(settings: Settings, engine: Engine) -> FastAPI:
    """The web application over an initialised database."""
    app = FastAPI(title="PSP Ledger", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.psp = WebState(settings, engine, _read_engine(engine), _templates(settings))
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(engine, settings.web),
        session_cookie=SESSION_COOKIE,
        max_age=settings.web.session_hours * 3600,
        same_site="strict",
        https_only=settings.web.secure_cookies,
    )
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(portal.router)
    app.include_router(sign_in.router)
    app.include_router(auth.router)
    app.include_router(staff.router)

    @app.get("/", include_in_schema=False)
    def home() -> Response:
        return redirect("/staff")

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == status.HTTP_303_SEE_OTHER:
            return redirect((exc.headers or {}).get("Location", "/staff/login"))
        return _error_page(request, exc.status_code)

    @app.exception_handler(RequestValidationError)
    def bad_request(request: Request, exc: RequestValidationError) -> Response:
        # A malformed link or form answers like an unknown page: nothing is echoed back.
        return _error_page(request, status.HTTP_404_NOT_FOUND if request.method == "GET" else 400)

    @app.exception_handler(CsrfError)
    def csrf_refused(request: Request, exc: CsrfError) -> Response:
        return _error_page(request, status.HTTP_403_FORBIDDEN, str(exc))

    return app


_TITLES = {400: "Bad request", 403: "Forbidden", 404: "Not found", 405: "Not allowed"}


def _error_page(request: Request, code: int, message: str = "") -> HTMLResponse:
    title = _TITLES.get(code, "Error")
    return render(request, "error.html", {"code": code, "title": title, "message": message}, status_code=code)
