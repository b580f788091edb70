"""Clients, their contact addresses and mail domains."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, col, select

from ledger import audit
from ledger.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from ledger.models import Client, ClientDomain, ClientEmail, LedgerEntry, Plan

_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")


def slugify(name: str) -> str:
    """`Acme Shop` → `acme-shop`; accents are dropped so slugs stay plain ASCII."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")


def normalise_address(address: str) -> str:
    cleaned = address.strip().lower()
    if not _ADDRESS.match(cleaned):
        raise InvalidInputError(f"not an email address: {address!r}")
    return cleaned


def normalise_domain(domain: str) -> str:
    cleaned = domain.strip().lower().lstrip("@")
    if not _DOMAIN.match(cleaned):
        raise InvalidInputError(f"not a mail domain: {domain!r}")
    return cleaned


def add_client(
    session: Session,
    actor: str,
    name: str,
    *,
    plan: Plan = Plan.PSP,
    emails: tuple[str, ...] = (),
    domains: tuple[str, ...] = (),
    hourly_rate_cents: int = 0,
) -> Client:
    """Record a new client; its slug must be new and its addresses and domains unclaimed."""
    slug = slugify(name)
    if not slug:
        raise InvalidInputError(f"client name {name!r} has no letters or digits to make a slug from")
    if hourly_rate_cents < 0:
        raise InvalidInputError("hourly rate cannot be negative")
    addresses = sorted({normalise_address(a) for a in emails})
    mail_domains = sorted({normalise_domain(d) for d in domains})
    if session.exec(select(Client.id).where(Client.slug == slug)).first() is not None:
        raise AlreadyExistsError(f"client {slug!r} already exists")
    _refuse_claimed(session, addresses, mail_domains)
    client = Client(slug=slug, name=name.strip(), plan=plan.value, hourly_rate_cents=hourly_rate_cents)
    session.add(client)
    session.flush()
    assert client.id is not None
    session.add_all(ClientEmail(client_id=client.id, address=a) for a in addresses)
    session.add_all(ClientDomain(client_id=client.id, domain=d) for d in mail_domains)
    audit.record(
        session,
        actor,
        "client.add",
        f"client:{client.id}",
        slug=slug,
        plan=plan.value,
        emails=addresses,
        domains=mail_domains,
        hourly_rate_cents=hourly_rate_cents,
    )
    return client


def _refuse_claimed(session: Session, addresses: list[str], domains: list[str]) -> None:
    if addresses:
        taken = session.exec(select(ClientEmail.address).where(col(ClientEmail.address).in_(addresses))).first()
        if taken:
            raise AlreadyExistsError(f"address {taken} already belongs to another client")
    if domains:
        taken = session.exec(select(ClientDomain.domain).where(col(ClientDomain.domain).in_(domains))).first()
        if taken:
            raise AlreadyExistsError(f"domain {taken} already belongs to another client")


def get_client(session: Session, slug: str) -> Client:
    client = session.exec(select(Client).where(Client.slug == slug)).first()
    if client is None:
        raise NotFoundError(f"unknown client {slug!r} (see `psp client list`)")
    return client


@dataclass(frozen=True)
class ClientSummary:
    """A client as listed: identity, plan, contacts and posted balance."""

    slug: str
    name: str
    plan: str
    hourly_rate_cents: int
    emails: tuple[str, ...]
    domains: tuple[str, ...]
    balance_minutes: int


def list_clients(session: Session) -> list[ClientSummary]:
    """Every client with its balance: three queries whatever the number of clients."""
    balance = sa.func.coalesce(sa.func.sum(LedgerEntry.minutes), 0)
    rows = session.exec(
        select(Client, balance)
        .join(LedgerEntry, col(LedgerEntry.client_id) == Client.id, isouter=True)
        .group_by(col(Client.id))
        .order_by(Client.slug)
    ).all()
    emails: dict[int, list[str]] = {}
    for client_id, address in session.exec(select(ClientEmail.client_id, ClientEmail.address)).all():
        emails.setdefault(client_id, []).append(address)
    domains: dict[int, list[str]] = {}
    for client_id, domain in session.exec(select(ClientDomain.client_id, ClientDomain.domain)).all():
        domains.setdefault(client_id, []).append(domain)
    return [
        ClientSummary(
            slug=client.slug,
            name=client.name,
            plan=client.plan,
            hourly_rate_cents=client.hourly_rate_cents,
            emails=tuple(sorted(emails.get(client.id or 0, []))),
            domains=tuple(sorted(domains.get(client.id or 0, []))),
            balance_minutes=int(total),
        )
        for client, total in rows
    ]
