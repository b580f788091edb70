"""Who a message is from: one of our staff, a client (by address, then domain), or nobody yet.

A forged From can burn a client's minutes. When the consultancy's own mail server is named as
the trusted Authentication-Results identifier, a message is attributed to a client automatically
only if that server says DMARC pass, or DKIM pass for the sender's own domain; anything else waits
for staff as "unverified". Results headers added by any other server are ignored: anyone can
write one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from sqlmodel import Session, select

from ingest.parsing import AuthVerdict, ParsedEmail
from ledger.models import ClientDomain, ClientEmail
from psp.config import Settings


class AttributionKind(StrEnum):
    STAFF = "staff"
    ADDRESS = "address"
    DOMAIN = "domain"
    UNMATCHED = "unmatched"
    UNVERIFIED = "unverified"


@dataclass(frozen=True)
class Directory:
    """What attribution looks up, loaded once per batch: client addresses and domains, staff."""

    addresses: Mapping[str, int]
    domains: Mapping[str, int]
    staff_addresses: frozenset[str] = frozenset()
    staff_domains: frozenset[str] = frozenset()
    trusted_authserv_id: str | None = None


@dataclass(frozen=True)
class Attribution:
    """The client a message is charged to (None: staff must decide), how, and why."""

    kind: AttributionKind
    client_id: int | None
    reason: str


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def _aligned(signing_domain: str, sender_domain: str) -> bool:
    """Relaxed DKIM alignment: the signing domain is the sender's domain or a parent of it."""
    return sender_domain == signing_domain or sender_domain.endswith("." + signing_domain)


def _verified(sender_domain: str, results: Sequence[AuthVerdict], trusted: str) -> str | None:
    """The trusted server's passing verdict for this sender, or None."""
    for verdict in results:
        if verdict.authserv_id.lower() != trusted.lower() or verdict.result.lower() != "pass":
            continue
        if verdict.method.lower() == "dmarc":
            return "DMARC pass"
        if verdict.method.lower() == "dkim" and verdict.domain and _aligned(verdict.domain.lower(), sender_domain):
            return f"DKIM pass for {verdict.domain}"
    return None


def attribute(sender: str | None, results: Sequence[AuthVerdict], directory: Directory) -> Attribution:
    """Staff first (our reply in the thread), then the exact address, then the domain."""
    if not sender:
        return Attribution(AttributionKind.UNMATCHED, None, "no sender address")
    address = sender.lower()
    domain = domain_of(address)
    if address in directory.staff_addresses or domain in directory.staff_domains:
        return Attribution(AttributionKind.STAFF, None, f"{address} is staff")
    if address in directory.addresses:
        kind, client_id, how = AttributionKind.ADDRESS, directory.addresses[address], f"address {address}"
    elif domain in directory.domains:
        kind, client_id, how = AttributionKind.DOMAIN, directory.domains[domain], f"domain {domain}"
    else:
        return Attribution(AttributionKind.UNMATCHED, None, f"no client has address {address} or domain {domain}")
    if directory.trusted_authserv_id is None:
        return Attribution(kind, client_id, how)
    proof = _verified(domain, results, directory.trusted_authserv_id)
    if proof is None:
        return Attribution(
            AttributionKind.UNVERIFIED,
            None,
            f"unverified sender: {how} matches, but {directory.trusted_authserv_id} "
            "reports no DMARC or aligned DKIM pass",
        )
    return Attribution(kind, client_id, f"{how} ({proof})")


def counterpart(parsed: ParsedEmail, who: Attribution, directory: Directory) -> int | None:
    """The client a message is about: the sender's, or for our reply, the recipient's."""
    if who.kind is not AttributionKind.STAFF:
        return who.client_id
    outside = next(iter(parsed.recipients), None)
    return attribute(outside, (), replace(directory, trusted_authserv_id=None)).client_id


def load_directory(session: Session, settings: Settings) -> Directory:
    addresses = dict(session.exec(select(ClientEmail.address, ClientEmail.client_id)).all())
    domains = dict(session.exec(select(ClientDomain.domain, ClientDomain.client_id)).all())
    return Directory(
        addresses=addresses,
        domains=domains,
        staff_addresses=frozenset(a.lower() for a in settings.staff.addresses),
        staff_domains=frozenset(d.lower() for d in settings.staff.domains),
        trusted_authserv_id=settings.mail.trusted_authserv_id or None,
    )
