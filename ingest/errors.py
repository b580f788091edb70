"""The errors the ingest package raises on purpose.

Every class derives from `IngestError`, itself a `PspError`, so the command line reports any of them
as one line. A poller catches `NotAnEmail` per message and quarantines the raw bytes with the message
as the reason; it never stops the poll.
"""

from psp.errors import PspError


class IngestError(PspError):
    """Root of the ingest family: a source item could not be read, parsed or stored."""


class NotAnEmail(IngestError):  # noqa: N818 - the name the brief and the callers use
    """The bytes are not an RFC 5322 message; the message says why (quarantine the item with it)."""


class QuarantineNotFoundError(IngestError):
    """No quarantined message has the id staff gave."""
