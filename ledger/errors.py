"""Errors of the ledger; each message names the record and what to do instead."""

from psp.errors import PspError


class LedgerError(PspError):
    """Root of the ledger's errors."""


class NotFoundError(LedgerError):
    """A client, proposal, project or entry named by the user does not exist."""


class InvalidInputError(LedgerError):
    """A value given by the user is out of range or malformed (minutes, dates, names)."""


class AlreadyExistsError(LedgerError):
    """A client, address or project with that identity is already recorded."""


class AlreadyDecidedError(LedgerError):
    """A proposal or project was approved, rejected, accepted or declined before."""


class AlreadyReversedError(LedgerError):
    """An entry already has a reversal; it cannot be reversed twice."""


class IdempotencyConflictError(LedgerError):
    """An idempotency key is already used by an entry with a different payload."""
