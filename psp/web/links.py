"""Client report links: a long random token in the URL, only its SHA-256 in the database.

An unknown, expired or revoked token is treated the same everywhere (404): nobody can tell a
withdrawn link from one that never existed.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col

from ledger import audit
from ledger.errors import NotFoundError
from ledger.models import Client, utcnow
from psp.config import Web
from psp.web.models import PortalLink

TOKEN_BYTES = 32


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def report_url(web: Web, token: str) -> str:
    return f"{web.base_url.rstrip('/')}/r/{token}"


@dataclass(frozen=True)
class IssuedLink:
    """A new link; the token exists only here, so it is shown once."""

    id: int
    url: str
    expires_at: datetime


def issue_link(session: Session, actor: str, client: Client, web: Web, days: int | None = None) -> IssuedLink:
    """A new report link for the client (earlier links stay valid until revoked or expired)."""
    assert client.id is not None
    token = secrets.token_urlsafe(TOKEN_BYTES)
    expires_at = utcnow() + timedelta(days=web.link_days if days is None else days)
    link = PortalLink(client_id=client.id, token_hash=token_hash(token), created_by=actor, expires_at=expires_at)
    session.add(link)
    session.flush()
    assert link.id is not None
    audit.record(session, actor, "link.issue", f"link:{link.id}", client=client.slug, expires_at=expires_at)
    return IssuedLink(link.id, report_url(web, token), expires_at)


def client_for_token(session: Session, token: str, now: datetime) -> Client | None:
    """The client whose live link this is, in one indexed query; None for anything else."""
    if not token or len(token) > 100:
        return None
    return session.execute(
        sa.select(Client)
        .join(PortalLink, col(PortalLink.client_id) == Client.id)
        .where(
            col(PortalLink.token_hash) == token_hash(token),
            col(PortalLink.revoked_at).is_(None),
            col(PortalLink.expires_at) > now,
        )
    ).scalar_one_or_none()


def revoke_link(session: Session, actor: str, link_id: int) -> PortalLink:
    """Withdraw a link at once; revoking twice is harmless."""
    link = session.get(PortalLink, link_id)
    if link is None:
        raise NotFoundError(f"no report link {link_id}")
    if link.revoked_at is None:
        link.revoked_at = utcnow()
        link.revoked_by = actor
        session.add(link)
        audit.record(session, actor, "link.revoke", f"link:{link_id}")
    return link


@dataclass(frozen=True)
class LinkRow:
    id: int
    client: str
    created_at: datetime
    created_by: str
    expires_at: datetime
    revoked_at: datetime | None

    def live(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now


def list_links(session: Session, client: Client | None = None) -> list[LinkRow]:
    query = (
        sa.select(
            col(PortalLink.id),
            col(Client.slug),
            col(PortalLink.created_at),
            col(PortalLink.created_by),
            col(PortalLink.expires_at),
            col(PortalLink.revoked_at),
        )
        .join(Client, col(Client.id) == PortalLink.client_id)
        .order_by(col(PortalLink.id).desc())
    )
    if client is not None:
        query = query.where(col(PortalLink.client_id) == client.id)
    return [LinkRow(*row) for row in session.execute(query)]
