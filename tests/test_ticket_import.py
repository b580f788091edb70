"""`psp ingest` of ticket exports (CSV, JSON): column mapping, idempotent re-import, bad rows refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from ingest.ticket_files import parse_created, parse_minutes
from psp.cli import app
from tests.test_intake_cli import psp

TICKETS = Path(__file__).parent / "data" / "tickets"
LABELLED = Path(__file__).parent / "data" / "labelled"
runner = CliRunner()


@pytest.fixture
def acme(db_url: str) -> str:
    psp(db_url, "client", "add", "Acme Shop", "--email", "jane@acme.example")
    return "acme-shop"


def proposal_rows(db_url: str) -> list[tuple[str | None, str, str, int, int, str]]:
    rows = json.loads(psp(db_url, "proposals", "list", "--json"))
    return [(r["client"], r["channel"], r["category"], r["contact_minutes"], r["minutes"], r["subject"]) for r in rows]


def test_a_csv_export_becomes_ticket_proposals_once(db_url: str, acme: str) -> None:
    export = str(TICKETS / "tickets.csv")

    first = json.loads(psp(db_url, "ingest", export, "--json"))

    assert first == {"read": 3, "stored": 3, "duplicate": 0, "ignored": 0, "quarantined": 0}
    [checkout, zone, stranger] = proposal_rows(db_url)
    assert checkout == ("acme-shop", "ticket", "billable", 40, 30, "Checkout broken")
    assert zone == ("acme-shop", "ticket", "billable", 90, 65, "Shipping zone")  # 1:30; the address in any case
    assert stranger[:3] == (None, "ticket", "pre-sales")  # no minutes recorded: estimated from the words
    again = json.loads(psp(db_url, "ingest", export, "--json"))
    assert again == {"read": 3, "stored": 0, "duplicate": 3, "ignored": 0, "quarantined": 0}
    assert len(proposal_rows(db_url)) == 3


def test_a_json_export_with_nested_columns_named_in_the_config(db_url: str, acme: str, tmp_path: Path) -> None:
    config = tmp_path / "psp.toml"
    config.write_text('[tickets]\nsystem = "zendesk"\nminutes = ["custom.time_spent"]\n')

    summary = json.loads(psp(db_url, "--config", str(config), "ingest", str(TICKETS / "zendesk.json"), "--json"))

    assert summary == {"read": 2, "stored": 1, "duplicate": 0, "ignored": 1, "quarantined": 0}  # and a thank-you
    assert proposal_rows(db_url) == [("acme-shop", "ticket", "billable", 25, 15, "Invoice PDF empty")]


def test_mail_and_tickets_in_one_command(db_url: str, acme: str) -> None:
    mail = sorted(str(p) for p in LABELLED.glob("00*.eml"))[:2]

    summary = json.loads(psp(db_url, "ingest", *mail, str(TICKETS / "tickets.csv"), "--json"))

    assert summary["read"] == 2 + 3
    assert {row[1] for row in proposal_rows(db_url)} == {"email", "ticket"}


def test_a_file_with_bad_rows_is_refused_whole_with_each_row_named(db_url: str, acme: str) -> None:
    result = runner.invoke(
        app, ["--db", db_url, "ingest", str(TICKETS / "tickets.csv"), str(TICKETS / "bad.csv"), "--json"]
    )

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"error: {TICKETS / 'bad.csv'}: nothing imported: row 3: no ticket id; "
        "row 4: requester 'not-an-address' is not an e-mail address; "
        "row 5: created time 'yesterday' is not ISO 8601 (2026-11-03T10:15:00Z); "
        "row 6: minutes 'ten' are not whole minutes or h:mm\n"
    )
    assert proposal_rows(db_url) == []  # not even the good file's rows


def test_a_file_without_a_needed_column_says_which_and_where_to_name_it(db_url: str, acme: str, tmp_path: Path) -> None:
    export = tmp_path / "freshdesk.csv"
    export.write_text("Ticket ID,Contact,Created time\n7,jane@acme.example,2026-11-03T10:00:00Z\n")

    result = runner.invoke(app, ["--db", db_url, "ingest", str(export)])

    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {export}: no column for requester (one of: requester_email, ")
    assert result.stderr.rstrip().endswith("name the file's columns in [tickets] in psp.toml")
    config = tmp_path / "psp.toml"
    config.write_text('[tickets]\nsystem = "freshdesk"\nrequester = ["Contact"]\n')
    summary = json.loads(psp(db_url, "--config", str(config), "ingest", str(export), "--json"))
    assert summary["stored"] == 1


def test_a_ticket_of_several_rows_needs_an_entry_column(db_url: str, acme: str, tmp_path: Path) -> None:
    export = tmp_path / "replies.csv"
    export.write_text(
        "ticket_id,requester_email,created,body,minutes,comment_id\n"
        "7,jane@acme.example,2026-11-03T10:00:00Z,Site down,10,1\n"
        "7,jane@acme.example,2026-11-03T11:00:00Z,Still down,5,2\n"
        "7,jane@acme.example,2026-11-03T11:00:00Z,Still down,5,2\n"  # the same row twice: stored once
    )
    assert json.loads(psp(db_url, "ingest", str(export), "--json"))["stored"] == 2
    assert [row[3] for row in proposal_rows(db_url)] == [10, 5]

    without = tmp_path / "no-entries.csv"
    without.write_text(export.read_text().replace(",comment_id", ",other"))
    result = runner.invoke(app, ["--db", db_url, "ingest", str(without)])
    assert result.exit_code == 1
    assert "row 3: ticket 7 was in row 2 already, with other content" in result.stderr


@pytest.mark.parametrize(
    ("text", "minutes"), [("45", 45), ("1:30", 90), ("01:30:00", 90), ("", None), ("  ", None), ("0", 0)]
)
def test_minutes_are_whole_minutes_or_hours_and_minutes(text: str, minutes: int | None) -> None:
    assert parse_minutes(text) == minutes


@pytest.mark.parametrize("text", ["-5", "1.5", "ten", "1:75"])
def test_other_minutes_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not whole minutes or h:mm"):
        parse_minutes(text)


def test_a_created_time_without_offset_is_the_consultancys_local_time() -> None:
    london = ZoneInfo("Europe/London")
    assert parse_created("2026-07-01 14:00", london) == datetime(2026, 7, 1, 13, 0, tzinfo=UTC)  # summer time
    assert parse_created("2026-11-03T09:15:00Z", london) == datetime(2026, 11, 3, 9, 15, tzinfo=UTC)
