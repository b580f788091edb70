"""Errors of outgoing mail."""

from psp.errors import PspError


class NotifyError(PspError):
    """Root of the notify family."""


class TransientMailError(NotifyError):
    """The relay could not take the message now (4xx, connection trouble): try again later."""


class PermanentMailError(NotifyError):
    """The relay refused the message for good (5xx), or the mailer is misconfigured."""
