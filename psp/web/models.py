"""Tables of the web shell: staff accounts, client report links, login attempts, the signing key.

A client link's token is never stored: only its SHA-256, so a copy of the database does not open
anyone's report. Login attempts live in the database so that every server process counts the
same failures.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from ledger.models import utc_column, utcnow


class StaffAccount(SQLModel, table=True):
    """Someone who may review proposals and manage clients on the staff pages."""

    __tablename__ = "staff_account"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, max_length=320)
    password_hash: str = Field(max_length=200)
    created_at: datetime = utc_column(default=utcnow)


class PortalLink(SQLModel, table=True):
    """A client's report link: the hash of its token, when it expires, whether it was revoked.

    Attributes:
      token_hash: SHA-256 (hex) of the random token in the URL.
      purpose: `report` (opens the client's pages) or `sign-in` (mailed to a client's address on
        request; works once, briefly, and is exchanged for a report link).
      revoked_at: set when staff withdraw the link (or a sign-in link is used); a revoked link
        answers 404 like an unknown one.
    """

    __tablename__ = "portal_link"

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="client.id", index=True)
    token_hash: str = Field(unique=True, max_length=64)
    created_at: datetime = utc_column(default=utcnow)
    created_by: str = Field(max_length=320)
    expires_at: datetime = utc_column()
    purpose: str = Field(default="report", max_length=16, sa_column_kwargs={"server_default": "report"})
    revoked_at: datetime | None = utc_column(nullable=True)
    revoked_by: str | None = Field(default=None, max_length=320)


class LoginAttempt(SQLModel, table=True):
    """One try at the staff login, kept for the rate limit per account and address."""

    __tablename__ = "login_attempt"
    __table_args__ = (sa.Index("ix_login_attempt_email_at", "email", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320)
    address: str = Field(max_length=64)
    at: datetime = utc_column(default=utcnow)
    succeeded: bool = False


class WebSecret(SQLModel, table=True):
    """A key the server generated for itself (the session signing key), shared by every worker."""

    __tablename__ = "web_secret"

    name: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=200)
