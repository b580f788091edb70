"""Threading: which support request (thread) a message belongs to.

By headers first: a message whose In-Reply-To or References names a stored message joins that
message's thread. Failing that, the same normalised subject between the same participants within
a window joins the latest such thread (clients often reply by writing a new mail). Otherwise the
message starts a thread of its own, keyed by its Message-ID.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

_REPLY_PREFIX = re.compile(
    r"^\s*(?:(?:re|fw|fwd|aw|wg|sv|vs|tr|rv|ref|antw|odp|vl)\s*(?:\[\d+\])?\s*:\s*|\[[^\]]{1,40}\]\s*)",
    re.IGNORECASE,
)


def normalise_subject(subject: str) -> str:
    """`Re: AW: [Ticket] Checkout  broken` → `checkout broken`."""
    previous = None
    text = subject
    while previous != text:
        previous = text
        text = _REPLY_PREFIX.sub("", text, count=1)
    return " ".join(text.lower().split())


def subject_key(subject: str, participant: str) -> str:
    """Fallback thread identity: normalised subject plus who it is with (client id or address)."""
    return f"{participant}|{normalise_subject(subject)}"[:500]


def new_thread_key(message_id: str) -> str:
    return f"mail:{message_id}"[:300]


def thread_by_headers(referenced_ids: Iterable[str], known: Mapping[str, str]) -> str | None:
    """The thread of the nearest referenced message we know (In-Reply-To first, then References
    from the newest back)."""
    for message_id in referenced_ids:
        if message_id in known:
            return known[message_id]
    return None
