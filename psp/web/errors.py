"""Errors of the web shell; the command line prints them, the pages show them as a message."""

from psp.errors import PspError


class WebError(PspError):
    """Root of the web shell's errors."""


class TooManyAttemptsError(WebError):
    """Too many failed logins for this account from this address; wait for the window to pass."""


class CsrfError(WebError):
    """A form came back without the token of the session that showed it."""
