"""Staff accounts: argon2id password hashes and a login rate limit kept in the database.

Failed attempts are rows, counted per account and client address over a sliding window, so
several server processes enforce one limit. A refused login never says whether the account exists.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, col, select

from ledger import audit
from ledger.clients import normalise_address
from ledger.errors import AlreadyExistsError, InvalidInputError
from psp.config import Web
from psp.web.errors import TooManyAttemptsError
from psp.web.models import LoginAttempt, StaffAccount

MIN_PASSWORD_LENGTH = 10
_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified when the account is unknown, so a wrong address costs as long as a wrong password.

    Made on first use: hashing takes a while, and most commands that load this never log anyone in.
    """
    return _hasher.hash("not a real password")


def add_staff(session: Session, actor: str, email: str, password: str) -> StaffAccount:
    """Create a staff login; the password is kept only as an argon2id hash."""
    address = normalise_address(email)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError(f"a staff password needs at least {MIN_PASSWORD_LENGTH} characters")
    if session.exec(select(StaffAccount.id).where(StaffAccount.email == address)).first() is not None:
        raise AlreadyExistsError(f"staff account {address} already exists")
    account = StaffAccount(email=address, password_hash=_hasher.hash(password))
    session.add(account)
    session.flush()
    audit.record(session, actor, "staff.add", f"staff:{account.id}", email=address)
    return account


def recent_failures(session: Session, email: str, address: str, since: datetime) -> int:
    """Refused attempts for this key from this address since then: what the rate limits count."""
    count = session.execute(
        sa.select(sa.func.count()).where(
            col(LoginAttempt.email) == email,
            col(LoginAttempt.address) == address,
            col(LoginAttempt.at) >= since,
            col(LoginAttempt.succeeded).is_(False),
        )
    ).scalar_one()
    return int(count)


def check_login(
    session: Session, web: Web, email: str, password: str, address: str, now: datetime
) -> StaffAccount | None:
    """The account if the password is right, else None; every attempt is recorded for the rate limit.

    A wrong password returns rather than raises, so the caller commits the failed attempt.
    """
    email = email.strip().lower()[:320]
    window = timedelta(minutes=web.login_window_minutes)
    if recent_failures(session, email, address, now - window) >= web.login_attempts:
        raise TooManyAttemptsError(f"too many failed logins: try again in {web.login_window_minutes} minutes")
    account = session.exec(select(StaffAccount).where(StaffAccount.email == email)).first()
    try:
        ok = _hasher.verify(account.password_hash if account else _dummy_hash(), password) and account is not None
    except (VerificationError, InvalidHashError):
        ok = False
    session.add(LoginAttempt(email=email, address=address[:64], at=now, succeeded=ok))
    if not ok or account is None:
        return None
    if _hasher.check_needs_rehash(account.password_hash):
        account.password_hash = _hasher.hash(password)
        session.add(account)
    return account
