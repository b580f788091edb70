"""The installed `psp` executable, run as a user would: a new process in a working folder."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import date, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest

PSP = Path(sys.executable).with_name("psp")
DEMO_CLIENTS = ("Acme Shop", "Bluebell Teas", "Corner Bikes", "Gartenwelt GmbH")
DEMO_PENDING = ("Question about shipping zones", "Image Handler thumbnails broken", "What would a PSP block cost?")


def psp(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `psp` in `cwd` with a clean environment plus `env`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("PSP_")}
    return subprocess.run(
        [str(PSP), *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ok(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = psp(cwd, *args, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert done.stdout == ""
    return lines[0]


def test_executable_is_installed() -> None:
    assert PSP.is_file()
    assert os.access(PSP, os.X_OK)


def test_demo_prints_reports_and_pending_and_can_run_again(tmp_path: Path) -> None:
    first = ok(tmp_path, "demo")
    assert (tmp_path / "psp-demo" / "psp.db").is_file()
    for name in ("Acme Shop", "Bluebell Teas", "Corner Bikes"):
        assert f"Support Tracking Report — {name}" in first
    # ignored: 4 automated messages, a spam and a thank-you (the default rules)
    assert "Sample mailbox ingested: 29 read, 23 stored, 0 duplicate, 6 ignored, 0 quarantined" in first
    # pending review: logged calls plus the sample mailbox's chargeable client mail
    assert "Balance 270 min (4:30); pending review 20 min" in first
    assert "Balance 55 min (0:55); pending review 30 min" in first
    assert "Balance -240 min (-4:00); pending review 0 min" in first
    assert 'rule third-party-module: sender is client; trace points into "One-Page Checkout"' in first
    waiting = first.split("Waiting for review:", 1)[1]
    for subject in DEMO_PENDING:
        assert subject in waiting

    last_month = date.today().replace(day=1) - timedelta(days=1)
    month, year = last_month.strftime("%B"), last_month.year
    outbox = sorted((tmp_path / "psp-demo" / "outbox").glob("*.eml"))
    subjects = sorted(str(message_from_bytes(p.read_bytes(), policy=policy.default)["Subject"]) for p in outbox)
    assert subjects == [
        *(f"Support statement for {month} {year}: {name}" for name in DEMO_CLIENTS),
        "Your support balance: 55 minutes left — time to renew your Priority Support Plan",
    ]

    second = ok(tmp_path, "demo")
    fresh_secrets = re.compile(r"(example / |/r/)\S+")  # the web login's password and link token are new each run
    assert fresh_secrets.sub(r"\1…", second) == fresh_secrets.sub(r"\1…", first)
    assert len(list((tmp_path / "psp-demo" / "outbox").glob("*.eml"))) == 5  # replaced, not added
    demo_db = "sqlite:///psp-demo/psp.db"
    clients = json.loads(ok(tmp_path, "--db", demo_db, "client", "list", "--json"))
    assert {c["slug"]: c["balance_minutes"] for c in clients} == {
        "acme-shop": 270,
        "bluebell-teas": 55,
        "corner-bikes": -240,
        "gartenwelt-gmbh": 360,
    }
    pending = json.loads(ok(tmp_path, "proposals", "list", "--status", "pending", "--json", "--db", demo_db))
    logged = [p["subject"] for p in pending if p["rule"] == "manual"]
    assert sorted(logged) == sorted(DEMO_PENDING)
    assert sum(1 for p in pending if p["channel"] == "email") == 16  # 23 stored mails less 7 staff replies


def test_init_uses_psp_db_in_the_working_folder(tmp_path: Path) -> None:
    assert "database ready: sqlite:///psp.db" in ok(tmp_path, "init")
    assert (tmp_path / "psp.db").is_file()
    ok(tmp_path, "init")
    assert "acme-shop" in ok(tmp_path, "client", "add", "Acme Shop", "--email", "jane@acme.example")
    [client] = json.loads(ok(tmp_path, "client", "list", "--json"))
    assert (client["slug"], client["name"], client["emails"]) == ("acme-shop", "Acme Shop", ["jane@acme.example"])
    assert (client["plan"], client["balance_minutes"]) == ("psp", 0)


def test_database_url_from_the_environment(tmp_path: Path) -> None:
    env = {"PSP_DATABASE_URL": f"sqlite:///{tmp_path / 'other.db'}"}
    ok(tmp_path, "init", env=env)
    assert (tmp_path / "other.db").is_file()
    assert not (tmp_path / "psp.db").exists()
    ok(tmp_path, "client", "add", "Acme Shop", env=env)
    assert [c["slug"] for c in json.loads(ok(tmp_path, "client", "list", "--json", env=env))] == ["acme-shop"]

    assert "no database at psp.db" in error_line(psp(tmp_path, "client", "list"))
    ok(tmp_path, "--db", "sqlite:///psp.db", "init", env=env)  # --db wins over the environment
    assert json.loads(ok(tmp_path, "client", "list", "--json", "--db", "sqlite:///psp.db", env=env)) == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("client", "frobnicate"), "No such command 'frobnicate'"),
        (("--bogus", "client", "list"), "No such option: --bogus"),
        (("block", "add", "acme-shop", "--minutes", "ten"), "'--minutes'"),
        (("proposals", "reject", "1"), "Missing option '--reason'"),
        (("report", "acme-shop", "--format", "pdf"), "'--format'"),
    ],
)
def test_bad_command_line_is_one_error_line_and_exit_2(tmp_path: Path, args: tuple[str, ...], says: str) -> None:
    ok(tmp_path, "init")
    done = psp(tmp_path, *args)
    assert done.returncode == 2
    assert says in error_line(done)


def test_config_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "mine.toml"
    config.write_text("[policy]\nblock_minute = 300\n", encoding="utf-8")
    ok(tmp_path, "init")
    done = psp(tmp_path, "client", "list", "--config", str(config))
    assert done.returncode != 0
    line = error_line(done)
    assert str(config) in line
    assert "'block_minute'" in line


def test_config_file_sets_the_policy(tmp_path: Path) -> None:
    (tmp_path / "psp.toml").write_text("[policy]\nblock_minutes = 300\nlogged_fraction = 0.5\n", encoding="utf-8")
    ok(tmp_path, "init")
    ok(tmp_path, "client", "add", "Acme Shop")
    ok(tmp_path, "block", "add", "acme-shop", "--on", "2025-03-01")
    ok(tmp_path, "log", "acme-shop", "--minutes", "60", "--channel", "phone", "--subject", "Call", "--on", "2025-03-02")
    [proposal] = json.loads(ok(tmp_path, "proposals", "list", "--json"))
    assert proposal["minutes"] == 30
    ok(tmp_path, "proposals", "approve", "1")
    assert json.loads(ok(tmp_path, "balance", "acme-shop", "--json"))["balance_minutes"] == 270
