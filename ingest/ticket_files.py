"""Ticket exports of other helpdesks (Zendesk, Freshdesk, …) as CSV or JSON, for `psp ingest`.

Which column holds what is configuration (`[tickets]` in psp.toml): for each field a list of
column names, the first one a file has is used, compared without regard to case; in JSON a name
may be a dotted path into nested objects (`requester.email`). A row is a ticket, or with an
entry column, one entry of a ticket; it is stored once per (system, ticket, entry), so importing
the same export again stores nothing twice.

Every row of every file is read and checked before anything is written: a file with a bad row
is refused whole, with the file, the row and the reason, and the command writes nothing.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from ingest.errors import IngestError
from ingest.summary import IntakeSummary
from ingest.ticket_store import SYSTEM_CHARS, TicketMessage, TicketStore
from psp import db
from psp.config import Settings, Tickets

TICKET_SUFFIXES = (".csv", ".json")
ONE_ENTRY = "ticket"  # the entry id of a ticket that is one row
MAX_ERRORS_SHOWN = 5
_HOURS_MINUTES = re.compile(r"^(\d+):([0-5]\d)(?::[0-5]\d)?$")


class TicketImportError(IngestError):
    """A ticket export could not be read, or a row of it is not a usable ticket."""


@dataclass(frozen=True)
class Columns:
    """The column each field is read from in one file (None: the file has no such column)."""

    ticket_id: str
    requester: str
    created: str
    subject: str | None
    body: str | None
    minutes: str | None
    entry: str | None
    queue: str | None


def is_ticket_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in TICKET_SUFFIXES


def _choose(names: Sequence[str], wanted: tuple[str, ...]) -> str | None:
    lowered = {name.lower(): name for name in names}
    return next((lowered[w.lower()] for w in wanted if w.lower() in lowered), None)


def columns(names: Sequence[str], mapping: Tickets, source: str) -> Columns:
    """Match the configured names against a file's columns; the three a ticket needs must be there."""
    required = {"ticket_id": mapping.ticket_id, "requester": mapping.requester, "created": mapping.created}
    found = {field: _choose(names, wanted) for field, wanted in required.items()}
    missing = [f"{field} (one of: {', '.join(required[field])})" for field, name in found.items() if name is None]
    if missing:
        raise TicketImportError(
            f"{source}: no column for {'; '.join(missing)}; name the file's columns in [tickets] in psp.toml"
        )
    return Columns(
        ticket_id=found["ticket_id"] or "",
        requester=found["requester"] or "",
        created=found["created"] or "",
        subject=_choose(names, mapping.subject),
        body=_choose(names, mapping.body),
        minutes=_choose(names, mapping.minutes),
        entry=_choose(names, mapping.entry),
        queue=_choose(names, mapping.queue),
    )


def parse_minutes(text: str) -> int | None:
    """Whole minutes (`45`) or hours and minutes (`1:30`, `01:30:00`); empty means none recorded."""
    text = text.strip()
    if not text:
        return None
    if text.isdigit():
        return int(text)
    match = _HOURS_MINUTES.match(text)
    if match:
        return int(match.group(1)) * 60 + int(match.group(2))
    raise ValueError(f"minutes {text!r} are not whole minutes or h:mm")


def parse_created(text: str, zone: ZoneInfo) -> datetime:
    """ISO 8601; a time without an offset is taken in the consultancy's zone ([policy].timezone)."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"created time {text!r} is not ISO 8601 (2026-11-03T10:15:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def _rows(path: Path) -> tuple[list[str], Iterator[tuple[int, Mapping[str, Any]]]]:
    """The file's column names and its rows, numbered as a person finds them in the file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise TicketImportError(f"cannot read {path}: {exc}") from exc
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        names = list(reader.fieldnames or [])
        return names, ((reader.line_num, row) for row in reader)
    records = _json_records(text, path)
    names = sorted({name for record in records for name in _paths(record)})
    return names, ((number, record) for number, record in enumerate(records, start=1))


def _json_records(text: str, path: Path) -> list[dict[str, Any]]:
    """A list of objects, an object holding one (`{"tickets": [...]}`), or one object per line."""
    try:
        value: Any = json.loads(text)
    except json.JSONDecodeError:
        try:
            value = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise TicketImportError(f"{path}: not JSON (line {exc.lineno}: {exc.msg})") from exc
    if isinstance(value, dict):
        lists = [v for v in value.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise TicketImportError(f"{path}: expected a list of tickets, or an object holding one list of them")
        value = lists[0]
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise TicketImportError(f"{path}: expected a list of ticket objects")
    return value


def _paths(record: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in record.items():
        yield prefix + key
        if isinstance(value, dict):
            yield from _paths(value, f"{prefix}{key}.")


def _value(record: Mapping[str, Any], column: str | None) -> str:
    if column is None:
        return ""
    value: Any = record.get(column)
    if value is None and "." in column:
        value = record
        for part in column.split("."):
            value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, dict | list):  # an object is not a value: map one of its fields (`requester.email`)
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return "" if value is None else str(value)


def _message(record: Mapping[str, Any], cols: Columns, system: str, zone: ZoneInfo) -> TicketMessage:
    ticket = _value(record, cols.ticket_id).strip()
    requester = _value(record, cols.requester).strip().lower()
    if not ticket or len(ticket) > 100:
        raise ValueError("no ticket id" if not ticket else "ticket id longer than 100 characters")
    if "@" not in requester:
        raise ValueError(f"requester {requester!r} is not an e-mail address" if requester else "no requester e-mail")
    minutes = parse_minutes(_value(record, cols.minutes))
    return TicketMessage(
        system=system,
        ticket=ticket,
        entry=_value(record, cols.entry).strip()[:100] or ONE_ENTRY,
        kind="row",
        subject=_value(record, cols.subject).strip(),
        text=_value(record, cols.body),
        author=requester,
        requestors=(requester,),
        occurred_at=parse_created(_value(record, cols.created), zone),
        time_taken=minutes,
        queue=_value(record, cols.queue).strip(),
    )


def read_ticket_file(path: Path, settings: Settings) -> list[TicketMessage]:
    """Every row of one export as a ticket entry, or an error naming each bad row."""
    mapping = settings.tickets
    if not mapping.system or len(mapping.system) > SYSTEM_CHARS:
        raise TicketImportError(f"[tickets].system must be a name of 1 to {SYSTEM_CHARS} characters")
    names, rows = _rows(path)
    cols = columns(names, mapping, str(path))
    messages, errors = [], []
    seen: dict[tuple[str, str], tuple[int, str]] = {}  # (ticket, entry) → its first row and content
    for number, record in rows:
        try:
            message = _message(record, cols, mapping.system, settings.policy.zone)
        except ValueError as exc:
            errors.append(f"row {number}: {exc}")
            continue
        first = seen.setdefault((message.ticket, message.entry), (number, message.content_hash()))
        if first[1] != message.content_hash():
            errors.append(
                f"row {number}: ticket {message.ticket} was in row {first[0]} already, with other content "
                "(a ticket of several rows needs an entry column, see [tickets].entry)"
            )
        messages.append(message)
    if errors:
        shown = "; ".join(errors[:MAX_ERRORS_SHOWN])
        more = f" (and {len(errors) - MAX_ERRORS_SHOWN} more)" if len(errors) > MAX_ERRORS_SHOWN else ""
        raise TicketImportError(f"{path}: nothing imported: {shown}{more}")
    return messages


def import_ticket_files(engine: Engine, settings: Settings, paths: Sequence[Path]) -> IntakeSummary:
    """Import ticket exports in one transaction, oldest entry first; a re-import stores nothing twice."""
    messages = [m for path in paths for m in read_ticket_file(path, settings)]
    messages.sort(key=lambda m: m.occurred_at)
    total = IntakeSummary()
    with db.transaction(engine) as session:
        store = TicketStore(session, settings)
        size = settings.mail.batch_size
        for start in range(0, len(messages), size):
            total.add(store.store(messages[start : start + size]))
    return total
