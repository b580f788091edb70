"""Request Tracker's REST 2.0, as typed values: ticket searches, ticket histories, message contents.

The one seam between PSP Ledger and an RT server. RT's JSON is loose (numbers as strings, ids
sometimes strings and sometimes integers, `pages` a float when empty, unset dates as 1970); this
module turns it into the dataclasses below or raises `RequestTrackerError` with what to do.

Every request authenticates (RT keeps no session), and RT hashes the credential each time, so
the sync asks for a page of up to 100 records at once and expands users and queues inline
(`fields[Requestor]=EmailAddress`) rather than fetching them one by one.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import partial
from types import MappingProxyType
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from ingest.errors import IngestError
from psp.config import Rt

# The transactions that carry a message (and the time recorded on it); RT's other transactions
# (status changes, field edits, outgoing mail records) are not support contact.
T = TypeVar("T")
MESSAGE_TYPES = {"Create": "create", "Correspond": "correspond", "Comment": "comment"}
_TICKET_FIELDS = "Subject,Status,Created,LastUpdated,Requestor,Queue,CustomFields"
_HISTORY_FIELDS = "Type,TimeTaken,Created,Creator"
# Not `Parent`: RT 5.0.3 answers 500 when asked to expand it.
_CONTENT_FIELDS = "TransactionId,ContentType,Subject,Content,Headers,Filename"


class RequestTrackerError(IngestError):
    """RT could not be reached, refused the credentials, or answered something unexpected."""


@dataclass(frozen=True)
class Ticket:
    """A ticket as a search returns it.

    Attributes:
      requestors: the requestors' e-mail addresses, lower-case, in RT's order.
      custom_fields: custom field name → its values.
    """

    id: int
    subject: str
    queue: str
    status: str
    created: datetime
    last_updated: datetime
    requestors: tuple[str, ...]
    custom_fields: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Transaction:
    """A create, correspond or comment transaction of a ticket.

    Attributes:
      kind: create, correspond or comment.
      time_taken: minutes recorded on it (RT's TimeTaken); may be 0.
      author: the creator's e-mail address, lower-case ("" for RT's own users).
    """

    id: int
    ticket: int
    kind: str
    time_taken: int
    created: datetime
    author: str
    author_name: str


@dataclass(frozen=True)
class Content:
    """What a transaction said: its first text part, subject, headers and how many files came with it.

    Attributes:
      text: the text as RT keeps it; HTML when `content_type` says so (RT 5's editor writes HTML).
      raw_headers: the headers of the message as RT received (or made) it, one per line.
    """

    text: str
    subject: str
    raw_headers: str
    attachments: int
    content_type: str = "text/plain"

    @property
    def headers(self) -> Mapping[str, tuple[str, ...]]:
        """Lower-case header name → its values, as the rules' `header` condition reads them."""
        found: dict[str, list[str]] = {}
        for line in self.raw_headers.splitlines():
            name, colon, value = line.partition(":")
            if colon and name and not name[0].isspace():
                found.setdefault(name.strip().lower(), []).append(value.strip())
        return MappingProxyType({name: tuple(values) for name, values in found.items()})


@dataclass(frozen=True)
class TicketPage:
    """One page of a ticket search.

    Attributes:
      server_time: RT's clock when it answered (the HTTP Date header), for the next cursor.
      last: whether this is the last page.
    """

    tickets: tuple[Ticket, ...]
    number: int
    last: bool
    server_time: datetime | None


def auth_header(rt: Rt, environ: Mapping[str, str] = os.environ) -> str:
    """`token …` when the token variable is set, else basic auth for `[rt].user`."""
    token = environ.get(rt.token_env, "")
    if token:
        return f"token {token}"
    password = environ.get(rt.password_env, "")
    if rt.user and password:
        return "Basic " + base64.b64encode(f"{rt.user}:{password}".encode()).decode()
    raise RequestTrackerError(
        f"no Request Tracker credentials: set {rt.token_env} to an RT auth token "
        f"(or set [rt].user and put the password in {rt.password_env})"
    )


def ticket_query(since: datetime | None, queues: tuple[str, ...], zone: ZoneInfo) -> str:
    """TicketSQL for tickets of the queues updated at or after `since`.

    RT reads a date literal in the API user's time zone and silently misreads any other form,
    so the moment is written as local 'YYYY-MM-DD HH:MM:SS' in that zone.
    """
    parts = []
    if queues:
        parts.append("(" + " OR ".join(f"Queue = '{_quoted(q)}'" for q in queues) + ")")
    if since is not None:
        parts.append(f"LastUpdated >= '{since.astimezone(zone):%Y-%m-%d %H:%M:%S}'")
    return " AND ".join(parts) or "id > 0"


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def parse_time(value: Any) -> datetime:
    """RT's `2026-11-26T06:20:00Z` as an aware UTC datetime."""
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError as exc:
        raise RequestTrackerError(f"Request Tracker sent a date that is not one: {value!r}") from exc


def _minutes(value: Any) -> int:
    try:
        return int(str(value or "0"))
    except ValueError as exc:
        raise RequestTrackerError(f"Request Tracker sent a TimeTaken that is not whole minutes: {value!r}") from exc


def parse_ticket(item: Mapping[str, Any]) -> Ticket:
    requestors = tuple(
        str(user.get("EmailAddress") or "").lower()
        for user in item.get("Requestor") or ()
        if isinstance(user, dict) and user.get("EmailAddress")
    )
    custom = {
        str(cf.get("name")): tuple(str(v) for v in cf.get("values") or ())
        for cf in item.get("CustomFields") or ()
        if isinstance(cf, dict) and cf.get("name")
    }
    queue = item.get("Queue")
    return Ticket(
        id=int(item["id"]),
        subject=str(item.get("Subject") or ""),
        queue=str(queue.get("Name") or queue.get("id") or "") if isinstance(queue, dict) else "",
        status=str(item.get("Status") or ""),
        created=parse_time(item.get("Created")),
        last_updated=parse_time(item.get("LastUpdated")),
        requestors=requestors,
        custom_fields=MappingProxyType(custom),
    )


def parse_transaction(ticket: int, item: Mapping[str, Any]) -> Transaction | None:
    kind = MESSAGE_TYPES.get(str(item.get("Type")))
    if kind is None:
        return None
    creator = item.get("Creator") if isinstance(item.get("Creator"), dict) else {}
    assert isinstance(creator, dict)
    return Transaction(
        id=int(item["id"]),
        ticket=ticket,
        kind=kind,
        time_taken=_minutes(item.get("TimeTaken")),
        created=parse_time(item.get("Created")),
        author=str(creator.get("EmailAddress") or "").lower(),
        author_name=str(creator.get("Name") or creator.get("id") or ""),
    )


def read_record(parse: Callable[[Mapping[str, Any]], T], item: Mapping[str, Any]) -> T:
    """A record parsed, or an error saying which record RT sent that we could not read."""
    try:
        return parse(item)
    except (KeyError, TypeError, ValueError) as exc:
        raise RequestTrackerError(
            f"Request Tracker sent a record this sync cannot read ({exc!r}): {item!r:.200}"
        ) from exc


class RequestTracker:
    """A REST 2.0 client for one RT: `[rt].url`, credentials from the environment."""

    def __init__(self, rt: Rt, environ: Mapping[str, str] = os.environ) -> None:
        if not rt.url:
            raise RequestTrackerError("no Request Tracker configured: set [rt].url in psp.toml")
        self.rt = rt
        self.base = rt.url.rstrip("/") + "/REST/2.0"
        self.authorization = auth_header(rt, environ)
        self.zone = ZoneInfo(rt.timezone)

    def _call(
        self, path: str, params: Mapping[str, str | int], search: list[dict[str, str]] | None = None
    ) -> tuple[dict[str, Any], datetime | None]:
        """GET a JSON object (or POST a JSON search for one); RT's clock from the Date header comes with it."""
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        headers = {"Authorization": self.authorization, "Accept": "application/json"}
        data = None
        if search is not None:
            data, headers["Content-Type"] = json.dumps(search).encode(), "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method="GET" if data is None else "POST")
        try:
            with urllib.request.urlopen(request, timeout=self.rt.timeout_seconds) as answer:
                body = answer.read()
                date = answer.headers.get("Date")
        except urllib.error.HTTPError as exc:
            raise self._refusal(path, exc) from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise RequestTrackerError(f"Request Tracker at {self.rt.url} did not answer: {reason}") from exc
        try:
            value = json.loads(body)
        except ValueError as exc:
            raise RequestTrackerError(
                f"{self.rt.url} sent something that is not JSON for {path}: is [rt].url RT's base URL?"
            ) from exc
        if not isinstance(value, dict):
            raise RequestTrackerError(f"Request Tracker sent an unexpected answer for {path}")
        server_time = parsedate_to_datetime(date).astimezone(UTC) if date else None
        return value, server_time

    def _refusal(self, path: str, exc: urllib.error.HTTPError) -> RequestTrackerError:
        try:
            message = str(json.loads(exc.read()).get("message", "")).strip().splitlines()[0]
        except (ValueError, AttributeError, IndexError):
            message = exc.reason
        if exc.code == 401:
            return RequestTrackerError(
                f"Request Tracker refused the credentials (401 {message}): check {self.rt.token_env} "
                f"or [rt].user and {self.rt.password_env}"
            )
        return RequestTrackerError(f"Request Tracker answered {exc.code} to {path}: {message}")

    def tickets(self, since: datetime | None, page: int) -> TicketPage:
        """One page of the tickets of `[rt].queues` updated at or after `since`, by id.

        By id, because ids never change: the set a search returns only grows while we read it
        (an updated ticket stays in it, a new one comes last), so page n stays page n.
        """
        params: dict[str, str | int] = {
            "query": ticket_query(since, self.rt.queues, self.zone),
            "page": page,
            "per_page": self.rt.page_size,
            "orderby": "id",
            "order": "ASC",
            "fields": _TICKET_FIELDS,
            "fields[Requestor]": "EmailAddress,Name",
            "fields[Queue]": "Name",
        }
        answer, server_time = self._call("/tickets", params)
        items = answer.get("items") or []
        tickets = tuple(read_record(parse_ticket, item) for item in items if isinstance(item, dict))
        last = not answer.get("next_page") or not tickets
        return TicketPage(tickets, page, last, server_time)

    def history(self, ticket: int) -> Iterator[Transaction]:
        """The ticket's message transactions, oldest first, page by page."""
        fields = {"fields": _HISTORY_FIELDS, "fields[Creator]": "Name,EmailAddress"}
        for item in self._items(f"/ticket/{ticket}/history", fields):
            found = read_record(partial(parse_transaction, ticket), item)
            if found is not None:
                yield found

    def contents(self, ticket: int, first_transaction: int) -> dict[int, Content]:
        """What the ticket's transactions from `first_transaction` on said, by transaction id.

        One search over the ticket's attachments, page by page, rather than a request per
        transaction: RT checks the credential on every request, which costs time in production.
        """
        search = [{"field": "TransactionId", "operator": ">=", "value": str(first_transaction)}]
        parts: dict[int, list[Mapping[str, Any]]] = {}
        for item in self._items(f"/ticket/{ticket}/attachments", {"fields": _CONTENT_FIELDS}, search):
            parts.setdefault(read_record(_transaction_id, item), []).append(item)
        return {transaction: content_of(found) for transaction, found in parts.items()}

    def _items(
        self, path: str, fields: Mapping[str, str], search: list[dict[str, str]] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every record of a paged collection, in id order, fetched a page at a time."""
        page = 1
        while True:
            params: dict[str, str | int] = {
                "page": page,
                "per_page": self.rt.page_size,
                "orderby": "id",
                "order": "ASC",
                **fields,
            }
            answer, _ = self._call(path, params, search)
            items = answer.get("items") or ()
            yield from (item for item in items if isinstance(item, dict))
            if not answer.get("next_page") or not items:
                return
            page += 1


def _transaction_id(item: Mapping[str, Any]) -> int:
    return int(item["TransactionId"])


def content_of(parts: Sequence[Mapping[str, Any]]) -> Content:
    """A transaction's attachments as what it said: the first text/plain part (else the first text part)."""
    texts = [p for p in parts if str(p.get("ContentType", "")).startswith("text/") and not p.get("Filename")]
    plain = [p for p in texts if p.get("ContentType") == "text/plain"]
    first = (plain or texts or [{}])[0]
    headed = next((p for p in parts if p.get("Headers")), {})
    return Content(
        text=str(first.get("Content") or ""),
        content_type=str(first.get("ContentType") or "text/plain"),
        subject=str(headed.get("Subject") or ""),
        raw_headers=str(headed.get("Headers") or ""),
        attachments=sum(1 for p in parts if p.get("Filename")),
    )
