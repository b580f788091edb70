"""The `psp` command line through typer's runner, on SQLite and PostgreSQL (SPEC: stable contract).

Each test drives the commands a member of staff would type and checks the numbers they would
see: balances, minutes charged and running balances. Bad input must give one `error:` line on
stderr, a non-zero exit, and leave every table exactly as it was.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel
from typer.testing import CliRunner, Result

import ledger.models
from psp import db
from psp.cli import app

ACTOR = "anna@example.test"
runner = CliRunner()

PROPOSAL_KEYS = {
    "id",
    "client",
    "status",
    "category",
    "minutes",
    "contact_minutes",
    "channel",
    "subject",
    "rule",
    "explanation",
    "project",
}
ENTRY_KEYS = {"id", "date", "kind", "category", "minutes", "balance", "subject", "reverses"}
REPORT_ROW_KEYS = {"date", "issue", "channel", "category", "minutes", "balance"}


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No psp.toml, database URL or actor from the surroundings."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PSP_DATABASE_URL", raising=False)
    monkeypatch.delenv("PSP_ACTOR", raising=False)


def run(db_url: str, *args: str) -> Result:
    return runner.invoke(app, ["--db", db_url, "--actor", ACTOR, *args])


def ok(db_url: str, *args: str) -> str:
    result = run(db_url, *args)
    assert result.exit_code == 0, result.stderr or result.exception
    return result.stdout


def ok_json(db_url: str, *args: str) -> Any:
    """Run a listing with --json; stdout must be JSON and nothing else."""
    return json.loads(ok(db_url, *args, "--json"))


def table_counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(db._normalise(url))
    with engine.connect() as connection:
        counts = {
            t.name: connection.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in SQLModel.metadata.sorted_tables
        }
    engine.dispose()
    return counts


def one_error_line(result: Result) -> str:
    """The single `error:` line of a failed command (no traceback, no usage box)."""
    assert result.exit_code != 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert result.stdout == ""
    return lines[0]


def assert_refused(db_url: str, *args: str, says: str) -> str:
    before = table_counts(db_url)
    line = one_error_line(run(db_url, *args))
    assert says in line
    assert table_counts(db_url) == before
    return line


def today_london() -> str:
    """Today in the policy's zone: the date of `--on`-less logs, reversals and project decisions."""
    return datetime.now(ZoneInfo("Europe/London")).date().isoformat()


def log(db_url: str, minutes: int, channel: str, subject: str, on: str) -> None:
    ok(db_url, "log", "acme-shop", "--minutes", str(minutes), "--channel", channel, "--subject", subject, "--on", on)


def add_acme(db_url: str) -> None:
    ok(db_url, "client", "add", "Acme Shop", "--email", "jane@acme.example", "--domain", "acme.example")
    ok(db_url, "block", "add", "acme-shop", "--minutes", "360", "--ref", "INV-1001", "--on", "2025-03-01")


@pytest.fixture
def seeded(db_url: str) -> str:
    """Acme Shop: block 360; P1 pending 30; P2 approved 45 (entry 2); P3 rejected;
    P4 approved 15 (entry 3) then reversed (entry 4) and pending again; project 1 proposed.
    Balance 315, pending 45."""
    add_acme(db_url)
    log(db_url, 40, "phone", "Checkout page blank", "2025-03-03")
    log(db_url, 60, "skype", "Shipping zones", "2025-03-04")
    log(db_url, 20, "onsite", "Coffee chat", "2025-03-05")
    log(db_url, 20, "phone", "Tax rates", "2025-03-06")
    ok(db_url, "proposals", "approve", "2")
    ok(db_url, "proposals", "reject", "3", "--reason", "not support")
    ok(db_url, "proposals", "approve", "4")
    ok(db_url, "entries", "reverse", "3", "--reason", "wrong client")
    ok(db_url, "project", "add", "acme-shop", "B2B Portal")
    summary = ok_json(db_url, "balance", "acme-shop")
    assert (summary["balance_minutes"], summary["pending_minutes"]) == (315, 45)
    return db_url


def test_hand_flow_end_to_end(db_url: str) -> None:
    out = ok(
        db_url,
        "client",
        "add",
        "Acme Shop",
        "--email",
        "jane@acme.example",
        "--domain",
        "acme.example",
        "--plan",
        "psp",
        "--rate",
        "85.50",
    )
    assert "acme-shop" in out
    [client] = ok_json(db_url, "client", "list")
    assert client["slug"] == "acme-shop"
    assert client["name"] == "Acme Shop"
    assert client["plan"] == "psp"
    assert client["hourly_rate_cents"] == 8550
    assert client["emails"] == ["jane@acme.example"]
    assert client["domains"] == ["acme.example"]
    assert client["balance_minutes"] == 0

    ok(db_url, "block", "add", "acme-shop", "--minutes", "360", "--ref", "INV-1001", "--on", "2025-03-01")
    log(db_url, 40, "phone", "Blank checkout page", "2025-03-03")
    log(db_url, 60, "skype", "Shipping zones", "2025-03-04")
    log(db_url, 120, "onsite", "Staff training", "2025-03-10")
    logged_on = today_london()
    ok(db_url, "log", "acme-shop", "--minutes", "15", "--channel", "phone", "--subject", "Quote please")
    ok(db_url, "log", "acme-shop", "--minutes", "10", "--channel", "email", "--subject", "Reset", "--on", "2025-03-22")

    proposals = ok_json(db_url, "proposals", "list")
    for row in proposals:
        assert row.keys() >= PROPOSAL_KEYS
    by_id = {p["id"]: p for p in proposals}
    assert [(by_id[i]["contact_minutes"], by_id[i]["minutes"]) for i in (1, 2, 3, 4, 5)] == [
        (40, 30),
        (60, 45),
        (120, 90),
        (15, 10),
        (10, 5),
    ]
    assert [by_id[i]["channel"] for i in (1, 2, 3, 5)] == ["phone", "skype", "onsite", "email"]
    assert {(p["client"], p["status"], p["category"], p["rule"], p["project"]) for p in proposals} == {
        ("acme-shop", "pending", "billable", "manual", None)
    }
    assert by_id[1]["subject"] == "Blank checkout page"
    assert "40 min × 0.75 → 30 min" in by_id[1]["explanation"]

    summary = ok_json(db_url, "balance", "acme-shop")
    assert summary["client"] == "acme-shop"
    assert summary["plan"] == "psp"
    assert (summary["balance_minutes"], summary["pending_minutes"], summary["held_minutes"]) == (360, 180, 0)

    ok(db_url, "proposals", "approve", "1", "2")
    ok(db_url, "proposals", "approve", "3", "--minutes", "60", "--note", "agreed on the phone")
    ok(db_url, "proposals", "approve", "4", "--category", "pre-sales")
    ok(db_url, "proposals", "reject", "5", "--reason", "duplicate of the phone call")

    decided = {p["id"]: p for p in ok_json(db_url, "proposals", "list", "--client", "acme-shop")}
    assert [decided[i]["status"] for i in (1, 2, 3, 4, 5)] == ["approved"] * 4 + ["rejected"]
    assert (decided[3]["minutes"], decided[4]["category"]) == (60, "pre-sales")
    assert [p["id"] for p in ok_json(db_url, "proposals", "list", "--status", "approved")] == [1, 2, 3, 4]
    assert [p["id"] for p in ok_json(db_url, "proposals", "list", "--status", "pending")] == []

    summary = ok_json(db_url, "balance", "acme-shop")
    assert (summary["balance_minutes"], summary["pending_minutes"], summary["held_minutes"]) == (225, 0, 0)
    [client] = ok_json(db_url, "client", "list")
    assert client["balance_minutes"] == 225

    entries = ok_json(db_url, "entries", "list", "acme-shop")
    for row in entries:
        assert row.keys() >= ENTRY_KEYS
    assert [(e["kind"], e["minutes"], e["balance"]) for e in entries] == [
        ("block", 360, 360),
        ("charge", -30, 330),
        ("charge", -45, 285),
        ("charge", -60, 225),
        ("charge", 0, 225),
    ]
    assert [e["date"] for e in entries[:4]] == ["2025-03-01", "2025-03-03", "2025-03-04", "2025-03-10"]
    assert entries[4]["date"] in {logged_on, today_london()}
    assert [e["reverses"] for e in entries] == [None] * 5


def test_global_options_anywhere_on_the_line(db_url: str) -> None:
    result = runner.invoke(app, ["client", "add", "Acme Shop", "--db", db_url, "--actor", ACTOR])
    assert result.exit_code == 0, result.stderr
    result = runner.invoke(app, ["client", "list", "--json", f"--db={db_url}"])
    assert result.exit_code == 0, result.stderr
    assert [c["slug"] for c in json.loads(result.stdout)] == ["acme-shop"]
    result = runner.invoke(app, ["block", "add", "acme-shop", "--actor", "tom@example.test", "--db", db_url])
    assert result.exit_code == 0, result.stderr

    engine = sa.create_engine(db._normalise(db_url))
    with engine.connect() as connection:
        actors = connection.execute(
            sa.select(ledger.models.AuditEvent.action, ledger.models.AuditEvent.actor).order_by(
                ledger.models.AuditEvent.id
            )
        ).all()
    engine.dispose()
    assert [tuple(a) for a in actors] == [("client.add", ACTOR), ("block.add", "tom@example.test")]


def test_block_without_minutes_credits_the_policy_block(db_url: str) -> None:
    ok(db_url, "client", "add", "Acme Shop")
    ok(db_url, "block", "add", "acme-shop", "--on", "2025-03-01")
    assert ok_json(db_url, "balance", "acme-shop")["balance_minutes"] == 360


def test_project_prep_waived_on_accept_charged_on_decline(db_url: str) -> None:
    add_acme(db_url)
    ok(db_url, "project", "add", "acme-shop", "B2B Portal")
    ok(db_url, "project", "add", "acme-shop", "Subscriptions")
    projects = ok_json(db_url, "project", "list")
    assert [{k: p[k] for k in ("id", "client", "name", "status")} for p in projects] == [
        {"id": 1, "client": "acme-shop", "name": "B2B Portal", "status": "proposed"},
        {"id": 2, "client": "acme-shop", "name": "Subscriptions", "status": "proposed"},
    ]
    prep = ("--channel", "skype", "--category", "project-prep")
    ok(
        db_url,
        "log",
        "acme-shop",
        "--minutes",
        "60",
        "--subject",
        "Portal spec",
        *prep,
        "--project",
        "1",
        "--on",
        "2025-03-08",
    )
    ok(
        db_url,
        "log",
        "acme-shop",
        "--minutes",
        "40",
        "--subject",
        "Boxes scope",
        *prep,
        "--project",
        "2",
        "--on",
        "2025-03-09",
    )
    log(db_url, 20, "phone", "Boxes follow-up", "2025-03-10")
    ok(
        db_url,
        "log",
        "acme-shop",
        "--minutes",
        "20",
        "--subject",
        "Boxes v2",
        *prep,
        "--project",
        "2",
        "--on",
        "2025-03-11",
    )
    assert [p["project"] for p in ok_json(db_url, "proposals", "list")] == [1, 2, None, 2]
    assert ok_json(db_url, "balance", "acme-shop")["pending_minutes"] == 45 + 30 + 15 + 15

    ok(db_url, "proposals", "approve", "1", "2")
    ok(db_url, "proposals", "approve", "3", "--category", "project-prep", "--project", "2")
    summary = ok_json(db_url, "balance", "acme-shop")
    assert (summary["balance_minutes"], summary["pending_minutes"], summary["held_minutes"]) == (360, 15, 90)
    assert len(ok_json(db_url, "entries", "list", "acme-shop")) == 1  # held prep posts nothing yet

    decided_on = today_london()
    assert "0 min charged" in ok(db_url, "project", "accept", "1")
    assert "45 min charged" in ok(db_url, "project", "decline", "2")
    assert [(p["id"], p["status"]) for p in ok_json(db_url, "project", "list")] == [(1, "accepted"), (2, "declined")]
    assert_refused(db_url, "project", "accept", "2", says="already declined")
    assert_refused(db_url, "project", "decline", "1", says="already accepted")

    # prep still in review when the project was declined is charged on the decline day too
    ok(db_url, "proposals", "approve", "4")
    summary = ok_json(db_url, "balance", "acme-shop")
    assert (summary["balance_minutes"], summary["pending_minutes"], summary["held_minutes"]) == (300, 0, 0)

    today = {decided_on, today_london()}
    entries = ok_json(db_url, "entries", "list", "acme-shop")
    assert [(e["category"], e["minutes"], e["balance"]) for e in entries] == [
        (None, 360, 360),
        ("project-prep", 0, 360),
        ("project-prep", -30, 330),
        ("project-prep", -15, 315),
        ("project-prep", -15, 300),
    ]
    assert entries[1]["date"] == "2025-03-08"
    assert {e["date"] for e in entries[2:]} <= today
    report = json.loads(ok(db_url, "report", "acme-shop", "--format", "json"))
    assert [(r["category"], r["minutes"], r["balance"]) for r in report["rows"][1:]] == [
        ("project-prep", 0, 360),
        ("project-prep", 30, 330),
        ("project-prep", 15, 315),
        ("project-prep", 15, 300),
    ]


def test_reversal_restores_balance_and_reopens_the_proposal(seeded: str) -> None:
    assert "+45 min" in ok(seeded, "entries", "reverse", "2", "--reason", "logged against the wrong client")
    summary = ok_json(seeded, "balance", "acme-shop")
    assert (summary["balance_minutes"], summary["pending_minutes"]) == (360, 90)
    pending = ok_json(seeded, "proposals", "list", "--status", "pending")
    assert [(p["id"], p["minutes"]) for p in pending] == [(1, 30), (2, 45), (4, 15)]

    entries = ok_json(seeded, "entries", "list", "acme-shop")
    assert [(e["id"], e["kind"], e["minutes"], e["reverses"]) for e in entries] == [
        (1, "block", 360, None),
        (2, "charge", -45, None),
        (3, "charge", -15, None),
        (4, "reversal", 15, 3),
        (5, "reversal", 45, 2),
    ]
    assert [e["balance"] for e in entries] == [360, 315, 300, 315, 360]
    assert entries[4]["subject"] == "Reversal of entry 2: Shipping zones"

    ok(seeded, "proposals", "approve", "2", "--minutes", "20", "--note", "agreed")
    newest = max(ok_json(seeded, "entries", "list", "acme-shop"), key=lambda e: e["id"])
    assert (newest["id"], newest["minutes"], newest["date"]) == (6, -20, "2025-03-04")
    assert ok_json(seeded, "balance", "acme-shop")["balance_minutes"] == 340


def test_client_without_plan_pays_the_two_hour_minimum_per_request(db_url: str) -> None:
    ok(db_url, "client", "add", "Corner Bikes", "--plan", "none", "--rate", "85")
    [client] = ok_json(db_url, "client", "list")
    assert (client["plan"], client["hourly_rate_cents"]) == ("none", 8500)
    base = ("log", "corner-bikes")
    ok(db_url, *base, "--minutes", "40", "--channel", "phone", "--subject", "Payment error", "--on", "2025-03-07")
    ok(db_url, *base, "--minutes", "200", "--channel", "onsite", "--subject", "Report export", "--on", "2025-03-16")
    ok(db_url, *base, "--minutes", "20", "--channel", "skype", "--subject", "Configurator", "--on", "2025-03-18")
    ok(db_url, *base, "--minutes", "20", "--channel", "phone", "--subject", "Price?", "--on", "2025-03-21")
    ok(db_url, "proposals", "approve", "1", "2")  # 30 logged → 120; 150 logged → 150
    ok(db_url, "proposals", "approve", "3", "--minutes", "130")
    ok(db_url, "proposals", "approve", "4", "--category", "pre-sales")

    summary = ok_json(db_url, "balance", "corner-bikes")
    assert (summary["plan"], summary["balance_minutes"]) == ("none", -400)
    report = json.loads(ok(db_url, "report", "corner-bikes", "--format", "json"))
    assert [(r["issue"], r["minutes"], r["balance"]) for r in report["rows"]] == [
        ("Payment error", 120, -120),
        ("Report export", 150, -270),
        ("Configurator", 130, -400),
        ("Price?", 0, -400),
    ]
    assert [e["minutes"] for e in ok_json(db_url, "entries", "list", "corner-bikes")] == [-120, -150, -130, 0]


@pytest.fixture
def reported(db_url: str) -> str:
    """Acme Shop with hostile subjects: block 360, then 30, 45, 5, 5, 5, 5 and a free row."""
    add_acme(db_url)
    log(db_url, 40, "phone", "Blank checkout page", "2025-03-03")
    log(db_url, 60, "skype", '=HYPERLINK("http://x","y")', "2025-03-04")
    log(db_url, 10, "email", "+1", "2025-03-05")
    log(db_url, 10, "email", "@SUM(A1)", "2025-03-06")
    log(db_url, 10, "email", "-2", "2025-03-07")
    log(db_url, 10, "onsite", "<script>alert(1)</script>", "2025-03-08")
    ok(
        db_url,
        "log",
        "acme-shop",
        "--minutes",
        "30",
        "--channel",
        "phone",
        "--subject",
        "Gift wrap bug",
        "--category",
        "module-bug",
        "--on",
        "2025-03-09",
    )
    ok(db_url, "proposals", "approve", "1", "2", "3", "4", "5", "6", "7")
    return db_url


BALANCES = [360, 330, 285, 280, 275, 270, 265, 265]


def test_report_json_has_charged_minutes_and_running_balance(reported: str) -> None:
    report = json.loads(ok(reported, "report", "acme-shop", "--format", "json"))
    assert (report["client"], report["balance_minutes"]) == ("acme-shop", 265)
    for row in report["rows"]:
        assert row.keys() >= REPORT_ROW_KEYS
    assert [r["minutes"] for r in report["rows"]] == [-360, 30, 45, 5, 5, 5, 5, 0]
    assert [r["balance"] for r in report["rows"]] == BALANCES
    assert report["rows"][7]["category"] == "module-bug"
    assert (report["rows"][0]["date"], report["rows"][1]["channel"]) == ("2025-03-01", "phone")

    cut = json.loads(
        ok(reported, "report", "acme-shop", "--format", "json", "--from", "2025-03-04", "--to", "2025-03-06")
    )
    assert cut["balance_minutes"] == 275  # the balance at the end of the --to day, as the last row says
    assert [(r["date"], r["minutes"], r["balance"]) for r in cut["rows"]] == [
        ("2025-03-04", 45, 285),
        ("2025-03-05", 5, 280),
        ("2025-03-06", 5, 275),
    ]


def test_report_csv_neutralises_formulas_and_keeps_numbers(reported: str) -> None:
    text = ok(reported, "report", "acme-shop", "--format", "csv")
    header, *rows = list(csv.reader(io.StringIO(text)))
    issue, minutes, balance = header.index("issue"), header.index("minutes"), header.index("balance")
    assert [r[issue] for r in rows[2:6]] == ['\'=HYPERLINK("http://x","y")', "'+1", "'@SUM(A1)", "'-2"]
    assert rows[1][issue] == "Blank checkout page"
    assert [int(r[minutes]) for r in rows] == [-360, 30, 45, 5, 5, 5, 5, 0]
    assert [int(r[balance]) for r in rows] == BALANCES

    cut = ok(reported, "report", "acme-shop", "--format", "csv", "--from", "2025-03-08", "--to", "2025-03-31")
    _, *rows = list(csv.reader(io.StringIO(cut)))
    assert [(r[0], r[minutes], r[balance]) for r in rows] == [("2025-03-08", "5", "265"), ("2025-03-09", "0", "265")]


def test_report_html_escapes_subjects(reported: str) -> None:
    html = ok(reported, "report", "acme-shop", "--format", "html", "--from", "2025-03-08", "--to", "2025-03-08")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "PSP balance: 265 min (4:25)" in html
    assert "Blank checkout page" not in html


def test_report_table_shows_time_and_running_balance(reported: str) -> None:
    text = ok(reported, "report", "acme-shop", "--format", "table", "--from", "2025-03-03", "--to", "2025-03-09")
    lines = {line.split()[0]: line.split() for line in text.splitlines() if line.startswith("2025-")}
    assert sorted(lines) == [f"2025-03-0{d}" for d in range(3, 10)]
    assert lines["2025-03-03"][-2:] == ["30", "330"]
    assert lines["2025-03-09"][-2:] == ["0", "265"]
    assert "no charge" in " ".join(lines["2025-03-09"])
    assert text == ok(reported, "report", "acme-shop", "--from", "2025-03-03", "--to", "2025-03-09")


BAD_INPUT = [
    pytest.param(("balance", "nobody"), "unknown client 'nobody'", id="unknown-client-balance"),
    pytest.param(
        ("log", "nobody", "--minutes", "10", "--channel", "phone", "--subject", "x"),
        "unknown client 'nobody'",
        id="unknown-client-log",
    ),
    pytest.param(("block", "add", "nobody"), "unknown client 'nobody'", id="unknown-client-block"),
    pytest.param(("report", "nobody"), "unknown client 'nobody'", id="unknown-client-report"),
    pytest.param(
        ("log", "acme-shop", "--minutes", "-5", "--channel", "phone", "--subject", "x"),
        "minutes must be a positive whole number, got -5",
        id="negative-minutes-log",
    ),
    pytest.param(("block", "add", "acme-shop", "--minutes", "-5"), "got -5", id="negative-minutes-block"),
    pytest.param(("proposals", "approve", "1", "--minutes", "-5"), "got -5", id="negative-minutes-approve"),
    pytest.param(
        ("log", "acme-shop", "--minutes", "1.5", "--channel", "phone", "--subject", "x"),
        "'--minutes'",
        id="fractional-minutes-log",
    ),
    pytest.param(
        ("log", "acme-shop", "--minutes", "ten", "--channel", "phone", "--subject", "x"),
        "'--minutes'",
        id="word-minutes-log",
    ),
    pytest.param(("block", "add", "acme-shop", "--minutes", "1.5"), "'--minutes'", id="fractional-minutes-block"),
    pytest.param(("proposals", "approve", "1", "--minutes", "ten"), "'--minutes'", id="word-minutes-approve"),
    pytest.param(("proposals", "approve", "2"), "proposal 2 is already approved", id="approve-approved"),
    pytest.param(("proposals", "approve", "3"), "proposal 3 is already rejected", id="approve-rejected"),
    pytest.param(("proposals", "reject", "2", "--reason", "x"), "already approved", id="reject-approved"),
    pytest.param(("proposals", "approve", "1", "2"), "proposal 2 is already approved", id="approve-all-or-nothing"),
    pytest.param(("proposals", "approve", "1", "99"), "no proposal 99", id="approve-unknown"),
    pytest.param(("entries", "reverse", "3", "--reason", "x"), "already reversed by entry 4", id="reverse-twice"),
    pytest.param(("entries", "reverse", "4", "--reason", "x"), "entry 4 is itself a reversal", id="reverse-reversal"),
    pytest.param(("entries", "reverse", "99", "--reason", "x"), "no ledger entry 99", id="reverse-unknown"),
    pytest.param(("block", "add", "acme-shop", "--on", "2026-13-45"), "bad --on date '2026-13-45'", id="date-13-45"),
    pytest.param(
        ("log", "acme-shop", "--minutes", "10", "--channel", "phone", "--subject", "x", "--on", "yesterday"),
        "bad --on date 'yesterday'",
        id="date-yesterday",
    ),
    pytest.param(("report", "acme-shop", "--from", "03/11/2026"), "'03/11/2026'", id="date-from-us"),
    pytest.param(("report", "acme-shop", "--to", "2026-02-30"), "'2026-02-30'", id="date-to-feb-30"),
    pytest.param(
        ("log", "acme-shop", "--minutes", "10", "--channel", "phone", "--subject", "x", "--category", "urgent"),
        "'--category'",
        id="unknown-category-log",
    ),
    pytest.param(("proposals", "approve", "1", "--category", "urgent"), "'--category'", id="unknown-category-approve"),
    pytest.param(
        ("log", "acme-shop", "--minutes", "10", "--channel", "fax", "--subject", "x"),
        "'--channel'",
        id="unknown-channel",
    ),
    pytest.param(
        ("log", "acme-shop", "--minutes", "10", "--channel", "phone", "--subject", "x", "--category", "project-prep"),
        "--project",
        id="prep-without-project-log",
    ),
    pytest.param(
        ("proposals", "approve", "1", "--category", "project-prep"), "--project", id="prep-without-project-approve"
    ),
    pytest.param(
        ("log", "acme-shop", "--minutes", "10", "--channel", "phone", "--subject", "x", "--project", "9"),
        "no project 9",
        id="unknown-project",
    ),
    pytest.param(("client", "add", "Acme Shop"), "client 'acme-shop' already exists", id="duplicate-client"),
    pytest.param(("client", "add", "ACME  shop!"), "client 'acme-shop' already exists", id="duplicate-slug"),
    pytest.param(
        ("client", "add", "Other", "--email", "Jane@Acme.example"),
        "jane@acme.example already belongs",
        id="claimed-address",
    ),
    pytest.param(("client", "add", "Other", "--plan", "gold"), "'--plan'", id="unknown-plan"),
    pytest.param(("client", "add", "Other", "--rate", "cheap"), "bad amount 'cheap'", id="bad-rate"),
    pytest.param(("proposals", "reject", "1", "--reason", " "), "needs a reason", id="blank-reason"),
    pytest.param(("client", "frobnicate"), "No such command 'frobnicate'", id="unknown-command"),
]


@pytest.mark.parametrize(("args", "says"), BAD_INPUT)
def test_bad_input_is_one_error_line_and_writes_nothing(seeded: str, args: tuple[str, ...], says: str) -> None:
    assert_refused(seeded, *args, says=says)


def test_all_or_nothing_leaves_the_first_proposal_pending(seeded: str) -> None:
    assert_refused(seeded, "proposals", "approve", "1", "4", "2", says="proposal 2 is already approved")
    pending = ok_json(seeded, "proposals", "list", "--status", "pending")
    assert [p["id"] for p in pending] == [1, 4]
    assert ok_json(seeded, "balance", "acme-shop")["balance_minutes"] == 315


def test_usage_errors_exit_2(seeded: str) -> None:
    result = run(seeded, "log", "acme-shop", "--minutes", "ten", "--channel", "phone", "--subject", "x")
    assert result.exit_code == 2
    assert "Usage" not in one_error_line(result)


def test_unreachable_postgres_is_one_error_line() -> None:
    line = one_error_line(runner.invoke(app, ["--db", "postgresql://nobody@127.0.0.1:1/none", "client", "list"]))
    assert "cannot reach database postgresql+psycopg://nobody@127.0.0.1:1/none" in line


def test_sqlite_in_a_missing_folder_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "psp.db"
    line = one_error_line(runner.invoke(app, ["--db", f"sqlite:///{path}", "client", "list", "--json"]))
    assert f"no database at {path}" in line
    line = one_error_line(runner.invoke(app, ["--db", f"sqlite:///{path}", "init"]))
    assert f"folder {path.parent} does not exist" in line
    assert not path.parent.exists()


def test_sqlite_file_is_not_created_without_init(tmp_path: Path) -> None:
    path = tmp_path / "psp.db"
    line = one_error_line(runner.invoke(app, ["--db", f"sqlite:///{path}", "client", "add", "Acme Shop"]))
    assert "run `psp init` first" in line
    assert not path.exists()


def test_uninitialised_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "psp.db"
    path.touch()
    line = one_error_line(runner.invoke(app, ["--db", f"sqlite:///{path}", "client", "list"]))
    assert "is not initialised: run `psp init`" in line


def test_init_creates_sqlite_and_is_repeatable(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert f"database ready: {url}" in ok(url, "init")
    assert (tmp_path / "fresh.db").exists()
    assert ok_json(url, "client", "list") == []
    ok(url, "client", "add", "Acme Shop")
    ok(url, "init")
    assert [c["slug"] for c in ok_json(url, "client", "list")] == ["acme-shop"]


def test_init_on_a_migrated_database_is_harmless(seeded: str) -> None:
    before = table_counts(seeded)
    ok(seeded, "init")
    assert table_counts(seeded) == before
    assert ok_json(seeded, "balance", "acme-shop")["balance_minutes"] == 315


def test_group_without_command_shows_help_not_an_error() -> None:
    result = runner.invoke(app, ["client"])
    assert result.exit_code == 2
    assert "error:" not in result.stderr
    assert "client [OPTIONS] COMMAND" in result.stderr
