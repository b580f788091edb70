"""What a parsing worker makes of one raw message, before the database is involved."""

from __future__ import annotations

from dataclasses import dataclass

from ingest.errors import NotAnEmail
from ingest.packing import pack
from ingest.parsing import ParsedEmail, parse_message


def parse_or_refusal(raw: bytes) -> ParsedEmail | NotAnEmail:
    """The parsed message, or the refusal to quarantine it with (picklable, for worker processes)."""
    try:
        return parse_message(raw)
    except NotAnEmail as exc:
        return exc


@dataclass(frozen=True, slots=True)
class Prepared:
    """What can be made of a raw message before the database is involved: parsed (or refused) and
    packed. Worker processes prepare messages, so this CPU work happens on every core.
    """

    parsed: ParsedEmail | NotAnEmail
    packed: bytes


def prepare(raw: bytes) -> Prepared:
    return Prepared(parse_or_refusal(raw), pack(raw))
