"""`psp ingest` and `psp quarantine` through the command line."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from psp.cli import app

LABELLED = Path(__file__).parent / "data" / "labelled"
runner = CliRunner()


def psp(db_url: str, *args: str) -> str:
    result = runner.invoke(app, ["--db", db_url, *args])
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_ingest_prints_the_contract_summary_and_is_idempotent(db_url: str, tmp_path: Path) -> None:
    files = [str(p) for p in sorted(LABELLED.glob("00*.eml"))]
    first = json.loads(psp(db_url, "ingest", *files, "--json"))
    assert first == {"read": 9, "stored": 7, "duplicate": 0, "ignored": 2, "quarantined": 0}  # a spam, a thank-you
    again = json.loads(psp(db_url, "ingest", *files, "--json"))
    assert again == {"read": 9, "stored": 0, "duplicate": 9, "ignored": 0, "quarantined": 0}


def test_quarantine_list_show_retry(db_url: str, tmp_path: Path) -> None:
    junk = tmp_path / "junk.eml"
    junk.write_bytes(b"// not mail\n")
    summary = json.loads(psp(db_url, "ingest", str(junk), "--json"))
    assert summary["quarantined"] == 1
    [row] = json.loads(psp(db_url, "quarantine", "list", "--json"))
    assert (row["uid"], row["attempts"]) == ("junk.eml", 1)
    shown = psp(db_url, "quarantine", "show", str(row["id"]))
    assert "reason: the first line is not a header field" in shown
    assert shown.rstrip().endswith("// not mail")
    assert "still quarantined (attempt 2)" in psp(db_url, "quarantine", "retry", str(row["id"]))


def test_missing_path_and_unknown_quarantine_id_are_one_line_errors(db_url: str) -> None:
    result = runner.invoke(app, ["--db", db_url, "ingest", "/nonexistent/mail", "--json"])
    assert (result.exit_code, result.stderr.strip()) == (1, "error: no such file or folder: /nonexistent/mail")
    result = runner.invoke(app, ["--db", db_url, "quarantine", "show", "42"])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: no quarantined message 42 (see `psp quarantine list`)"


def test_assigning_an_unmatched_sender_can_teach_the_address(db_url: str, tmp_path: Path) -> None:
    psp(db_url, "client", "add", "Nordic Knits", "--plan", "none")
    first, second = tmp_path / "1.eml", tmp_path / "2.eml"
    for path, n in ((first, 1), (second, 2)):
        path.write_text(
            f"From: Lars <lars@nordicknits.example>\nTo: support@harbourcart.example\nSubject: Question {n}\n"
            f"Date: Mon, 2 Mar 2026 10:0{n}:00 +0000\nMessage-ID: <q{n}@nordicknits.example>\n\nHello {n}\n"
        )
    psp(db_url, "ingest", str(first))
    [pending] = json.loads(psp(db_url, "proposals", "list", "--json"))
    assert (pending["client"], pending["category"]) == (None, "pre-sales")
    assert "remembered" in psp(db_url, "proposals", "assign", str(pending["id"]), "nordic-knits", "--remember")
    psp(db_url, "ingest", str(second))
    proposals = json.loads(psp(db_url, "proposals", "list", "--json"))
    assert [(p["subject"], p["client"], p["category"]) for p in proposals] == [
        ("Question 1", "nordic-knits", "pre-sales"),
        ("Question 2", "nordic-knits", "billable"),
    ]
    [client] = json.loads(psp(db_url, "client", "list", "--json"))
    assert client["emails"] == ["lars@nordicknits.example"]
