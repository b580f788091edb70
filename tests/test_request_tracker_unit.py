"""The pure parts of the RT client: TicketSQL, RT's loose JSON, credentials, the [rt] settings."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ingest.request_tracker import (
    Content,
    RequestTrackerError,
    auth_header,
    parse_ticket,
    parse_transaction,
    read_record,
    ticket_query,
)
from ingest.rt_sync import automated, plain_text
from psp.config import Rt, Settings, load_settings, parse_settings
from psp.errors import ConfigError

EXAMPLE = Path(__file__).parents[1] / "psp.example.toml"


def test_the_example_documents_the_rt_and_tickets_defaults() -> None:
    example = load_settings(EXAMPLE)
    assert (example.rt, example.tickets) == (Settings().rt, Settings().tickets)


def test_the_query_writes_the_cursor_in_the_rt_users_zone_and_quotes_queue_names() -> None:
    since = datetime(2026, 11, 26, 15, 0, 5, tzinfo=UTC)
    query = ticket_query(since, ("Support", "Bob's queue"), ZoneInfo("America/New_York"))
    assert query == "(Queue = 'Support' OR Queue = 'Bob\\'s queue') AND LastUpdated >= '2026-11-26 10:00:05'"
    assert ticket_query(None, (), ZoneInfo("UTC")) == "id > 0"


def test_rts_loose_ticket_json_becomes_typed_values() -> None:
    ticket = parse_ticket(
        {
            "id": "7",
            "Subject": "Printer on fire",
            "Created": "2026-11-26T06:20:00Z",
            "LastUpdated": "2026-11-26T06:21:00Z",
            "Queue": {"id": "3", "Name": "Support"},
            "Requestor": [{"id": "bob", "EmailAddress": "Bob@Example.com"}, {"id": "nobody", "EmailAddress": ""}],
            "CustomFields": [{"name": "Severity", "values": ["High"]}, {"name": "Empty", "values": []}],
        }
    )
    assert (ticket.id, ticket.queue, ticket.requestors) == (7, "Support", ("bob@example.com",))
    assert dict(ticket.custom_fields) == {"Severity": ("High",), "Empty": ()}
    assert ticket.last_updated == datetime(2026, 11, 26, 6, 21, tzinfo=UTC)


def test_only_message_transactions_are_read_with_their_time() -> None:
    creator = {"Name": "anna", "EmailAddress": "Anna@Example.com"}
    reply = parse_transaction(7, {"id": 41, "Type": "Correspond", "TimeTaken": "15", "Created": "2026-11-26T06:20:00Z"})
    assert reply is not None
    assert (reply.kind, reply.time_taken, reply.author) == ("correspond", 15, "")
    comment = parse_transaction(
        7, {"id": "44", "Type": "Comment", "TimeTaken": "30", "Created": "2026-11-26T06:20:00Z", "Creator": creator}
    )
    assert comment is not None
    assert (comment.id, comment.author, comment.author_name) == (44, "anna@example.com", "anna")
    assert (
        parse_transaction(7, {"id": "45", "Type": "Set", "TimeTaken": "70", "Created": "2026-11-26T06:20:00Z"}) is None
    )


def test_a_bad_time_taken_is_an_error_not_zero() -> None:
    with pytest.raises(RequestTrackerError, match=r"not whole minutes: '1\.5'"):
        parse_transaction(7, {"id": "41", "Type": "Comment", "TimeTaken": "1.5", "Created": "2026-11-26T06:20:00Z"})


def test_a_token_wins_then_basic_auth_then_a_clear_error() -> None:
    rt = Rt(url="https://rt.example.com", user="psp")
    assert auth_header(rt, {"PSP_RT_TOKEN": "1-14-abc", "PSP_RT_PASSWORD": "pw"}) == "token 1-14-abc"
    assert auth_header(rt, {"PSP_RT_PASSWORD": "pw"}) == "Basic cHNwOnB3"
    with pytest.raises(RequestTrackerError, match="set PSP_RT_TOKEN to an RT auth token"):
        auth_header(rt, {})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[rt]\npage_size = 500", "page_size must be between 1 and 100"),
        ("[rt]\ntimezone = 'Mars/Olympus'", "\\[rt\\].timezone 'Mars/Olympus' is not a known time zone"),
        ("[rt]\nqueues = 'Support'", "\\[rt\\].queues must be a list"),
        ("[rt]\ninterval_seconds = -1", "interval_seconds cannot be negative"),
        ("[rt]\nsince = '1 Jan'", "\\[rt\\].since '1 Jan' is not a day"),
        ("[tickets]\nticket_id = 'id'", "\\[tickets\\].ticket_id must be a list"),
    ],
)
def test_bad_rt_and_tickets_settings_are_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_settings(text, "test.toml")


def test_a_record_rt_sent_that_cannot_be_read_is_a_clear_error() -> None:
    with pytest.raises(RequestTrackerError, match="a record this sync cannot read"):
        read_record(parse_ticket, {"Subject": "no id"})


def test_html_from_rts_editor_is_read_as_text_and_headers_are_parsed() -> None:
    content = Content(
        text="<p>Hello <b>there</b></p><p>Fish &amp; chips</p>",
        subject="Re: order",
        raw_headers="Content-Type: text/html\nX-RT-Interface: Web\nAuto-Submitted: no",
        attachments=0,
        content_type="text/html",
    )
    assert plain_text(content) == "Hello there\n\nFish & chips"
    assert content.headers["x-rt-interface"] == ("Web",)
    assert automated(content, plain_text(content)) is None
    automatic = replace(content, raw_headers="Auto-Submitted: auto-replied")
    assert automated(automatic, plain_text(automatic)) == "Auto-Submitted: auto-replied"
