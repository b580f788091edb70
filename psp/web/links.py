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
REPORT = "report"
SIGN_IN = "sign-in"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedLink:
    """A new link; the token exists only here, so it is shown once."""

    id: int
    path: str  # /r/TOKEN, or /sign-in/TOKEN
    url: str


def issue_link(
    session: Session,
    actor: str,
    client: Client,
    web: Web,
    lifetime: timedelta | None = None,
    *,
    purpose: str = REPORT,
) -> IssuedLink:
    """A new link for the client (earlier links stay valid until revoked or expired).

    It lasts `lifetime`, by default `[web].link_days`. A `sign-in` link is the one-time kind
    mailed to a client on request: it opens nothing until `redeem_sign_in` exchanges it.
    """
    assert client.id is not None
    token = secrets.token_urlsafe(TOKEN_BYTES)
    expires_at = utcnow() + (lifetime if lifetime is not None else timedelta(days=web.link_days))
    link = PortalLink(
        client_id=client.id, token_hash=token_hash(token), created_by=actor, expires_at=expires_at, purpose=purpose
    )
    session.add(link)
    session.flush()
    assert link.id is not None
    action = "link.issue" if purpose == REPORT else "link.sign-in"
    audit.record(session, actor, action, f"link:{link.id}", client=client.slug, expires_at=expires_at)
    path = f"/r/{token}" if purpose == REPORT else f"/sign-in/{token}"
    return IssuedLink(link.id, path, web.base_url.rstrip("/") + path)


def _live(token: str, purpose: str, now: datetime) -> sa.Select[Client, int | None]:
    return (
        sa.select(Client, col(PortalLink.id))
        .join(PortalLink, col(PortalLink.client_id) == Client.id)
        .where(
            col(PortalLink.token_hash) == token_hash(token),
            col(PortalLink.purpose) == purpose,
            col(PortalLink.revoked_at).is_(None),
            col(PortalLink.expires_at) > now,
        )
    )


def client_for_token(session: Session, token: str, now: datetime) -> Client | None:
    """The client whose live report link this is, in one indexed query; None for anything else."""
    if not token or len(token) > 100:
        return None
    row = session.execute(_live(token, REPORT, now)).one_or_none()
    return None if row is None else row[0]


def redeem_sign_in(session: Session, web: Web, token: str, now: datetime) -> IssuedLink | None:
    """Use a mailed sign-in link, once: it is withdrawn and a report link for its client is issued.

    The withdrawal is a conditional UPDATE, so two clicks racing each other get one report link.
    """
    if not token or len(token) > 100:
        return None
    row = session.execute(_live(token, SIGN_IN, now)).one_or_none()
    if row is None:
        return None
    client, link_id = row
    used = session.execute(
        sa.update(PortalLink)
        .where(col(PortalLink.id) == link_id, col(PortalLink.revoked_at).is_(None))
        .values(revoked_at=now, revoked_by=SIGN_IN)
    )
    if used.rowcount != 1:  # type: ignore[attr-defined]  # an UPDATE's CursorResult
        return None
    return issue_link(session, SIGN_IN, client, web, lifetime=timedelta(hours=web.signed_in_hours))


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

    def state(self, now: datetime) -> str:
        """live, revoked or expired: what the link does if opened at `now`."""
        if self.revoked_at is not None:
            return "revoked"
        return "live" if self.expires_at > now else "expired"


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
    query = query.where(col(PortalLink.purpose) == REPORT)
    if client is not None:
        query = query.where(col(PortalLink.client_id) == client.id)
    return [LinkRow(*row) for row in session.execute(query)]
