"""The minutes estimator: contact time from the evidence, then the generous rule.

Contact time is what it took to deal with the item: reading the client's new text, writing our
reply (once the staff reply is ingested), opening attachments, and a base per channel. Time that a
person recorded (a helpdesk TimeTaken, a logged call) is taken as given. Both the contact time and
the proposed minutes are kept, so clients can be shown the time we did not charge.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ledger.policy import generous_minutes
from psp.config import Policy

_WORD = re.compile(r"\w+")


def count_words(text: str) -> int:
    return len(_WORD.findall(text))


def minutes_for(words: int, per_minute: int) -> int:
    """Words at a pace, to the nearest minute; any words at all take at least one."""
    if words <= 0:
        return 0
    return max(1, (2 * words + per_minute) // (2 * per_minute))


@dataclass(frozen=True)
class EstimateSettings:
    """Reading and writing speeds and fixed costs; the rules file's [estimate] table."""

    read_words_per_minute: int = 200
    write_words_per_minute: int = 40
    minutes_per_attachment: int = 2
    base_minutes: Mapping[str, int] = field(
        default_factory=lambda: MappingProxyType({"email": 8, "ticket": 5, "phone": 0, "skype": 0, "onsite": 0})
    )


@dataclass(frozen=True)
class Estimate:
    """Contact time, the minutes proposed from it, and the arithmetic in words."""

    contact_minutes: int
    minutes: int
    reason: str


def estimate(
    *,
    channel: str,
    new_text: str,
    attachments: int,
    reply_words: int,
    given_minutes: int | None,
    billable: bool,
    policy: Policy,
    settings: EstimateSettings,
) -> Estimate:
    if given_minutes is not None:
        contact = given_minutes
        parts = f"recorded {given_minutes}"
    else:
        words = count_words(new_text)
        pieces = [(f"read {words} words", minutes_for(words, settings.read_words_per_minute))]
        if reply_words:
            pieces.append((f"reply {reply_words} words", minutes_for(reply_words, settings.write_words_per_minute)))
        if attachments:
            pieces.append((f"{attachments} attachment(s)", attachments * settings.minutes_per_attachment))
        pieces.append(("base", settings.base_minutes.get(channel, 0)))
        contact = sum(minutes for _, minutes in pieces)
        parts = " + ".join(f"{label} {minutes}" for label, minutes in pieces)
    logged = generous_minutes(contact, policy, billable=billable)
    fraction = f"{float(policy.fraction):g}"
    return Estimate(contact, logged.minutes, f"contact {contact} min ({parts}) × {fraction} → {logged.minutes} min")
