"""Headers, the session signing key and CSRF tokens: the defences every page shares.

The content security policy allows scripts and styles only from our own /static, so even a mail
subject that slipped through escaping could not run. No page may be framed, and no page sends a
Referer: the client's token is in the URL of the report and must not travel to other sites.
"""

from __future__ import annotations

import hmac
import os
import secrets

import sqlalchemy as sa
from fastapi import Request
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import col
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from psp import db
from psp.config import Web
from psp.web.errors import CsrfError
from psp.web.models import WebSecret

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Kept statements are our own HTML with their own inline styles: shown sandboxed, never scripted.
STATEMENT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; sandbox"
_HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)
_NO_STORE = (b"cache-control", b"no-store")
SESSION_SECRET = "session"


class SecurityHeaders:
    """Adds the security headers to every response that does not set its own policy."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in _HEADERS if h[0] not in present)
                if not static and _NO_STORE[0] not in present:
                    headers.append(_NO_STORE)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def session_secret(engine: Engine, web: Web) -> str:
    """The key that signs sessions: from the environment, else generated once and kept in the database."""
    from_env = os.environ.get(web.secret_env, "")
    if from_env:
        return from_env
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    with db.transaction(engine) as session:
        session.execute(
            insert(WebSecret)
            .values(name=SESSION_SECRET, value=secrets.token_urlsafe(48))
            .on_conflict_do_nothing(index_elements=["name"])
        )
        value = session.execute(
            sa.select(col(WebSecret.value)).where(col(WebSecret.name) == SESSION_SECRET)
        ).scalar_one()
    return str(value)


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use; every form carries it back."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def check_csrf(request: Request, submitted: str) -> None:
    expected = request.session.get("csrf")
    if not isinstance(expected, str) or not hmac.compare_digest(expected.encode(), submitted.encode()):
        raise CsrfError("the form has expired or did not come from this site: reload the page and try again")
