"""Monthly statements for many clients: time per statement against rendering alone.

    .venv/bin/python -m bench.statements_bench [--clients 1000] [--skip-postgres]

A database is filled with `--clients` clients (nine in ten on the plan, the rest without one),
each with a few months of history and about a dozen items in the statement month. Then, in the same
run:

  (a) the limit: rendering the four documents (text, HTML, CSV, PDF) of every statement from data
      already in memory — the same templates with no database work;
  (b) `psp statements MONTH --send` as a user runs it (a new process; the outbox as the mailer):
      read and reconcile, render, freeze the snapshots, write every mail.

It prints the time per statement of each and the ratio (b)/(a), then (b)'s work phase by phase,
measured again in this process as a resend.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ledger.models import Block, Client, ClientEmail, LedgerEntry, Proposal, SourceItem
from ledger.statements import StatementMonth
from notify.mailer import OutboxMailer
from notify.outbox import deliver_pending
from notify.statements import gather, record_statements, render_all
from psp import db
from psp.config import Settings
from tests.servers.postgres import PostgresUnavailableError, drop_database, postgres_url, scratch_database

MONTH = StatementMonth(2026, 10)
PSP = Path(sys.executable).with_name("psp")
SUBJECTS = (
    "Checkout page blank after update",
    "Shipping zones for Northern Ireland",
    "Easy Gift Wrap option missing",
    "Quote for a product configurator",
    "Customer cannot reset password",
    "Stock sync shows negative quantities",
    "VAT on digital goods",
    "Slow category pages",
)


def fill(engine: Engine, clients: int, seed: int) -> int:
    """Clients, blocks, source items, proposals and ledger entries, inserted in bulk; returns entries."""
    rng = random.Random(seed)
    rows: dict[str, list[dict[str, Any]]] = {"client": [], "email": [], "block": [], "item": [], "proposal": []}
    entries: list[dict[str, Any]] = []
    now = datetime.now(UTC)

    def entry(client_id: int, day: date, kind: str, minutes: int, subject: str, **extra: Any) -> None:
        entries.append(
            {
                "id": len(entries) + 1,
                "client_id": client_id,
                "effective_on": day,
                "posted_at": now,
                "kind": kind,
                "minutes": minutes,
                "subject": subject,
                "idempotency_key": f"bench:{len(entries) + 1}",
                "reason": "bench",
                "actor": "bench",
                "logged_minutes": 0,
                **dict.fromkeys(("category", "channel", "request_key", "proposal_id", "source_item_id", "block_id")),
                **extra,
            }
        )

    for n in range(1, clients + 1):
        plan = "psp" if n % 10 else "none"
        rows["client"].append(
            {"id": n, "slug": f"client-{n:05d}", "name": f"Client {n}", "plan": plan, "created_at": now}
        )
        rows["client"][-1]["hourly_rate_cents"] = 0 if plan == "psp" else 8500
        rows["email"].append({"client_id": n, "address": f"billing@client-{n:05d}.example", "billing": True})
        if plan == "psp":
            block_id = len(rows["block"]) + 1
            bought = date(2026, 8, 1)
            rows["block"].append({"id": block_id, "client_id": n, "minutes": 1080, "purchased_on": bought})
            rows["block"][-1]["created_at"] = now
            entry(n, bought, "block", 1080, "PSP block purchased (1080 min)", block_id=block_id)
        for i in range(rng.randint(8, 16) + 6):
            in_month = i >= 6
            day = (
                date(2026, 10, rng.randint(1, 31))
                if in_month
                else date(2026, 8, 2) + timedelta(days=rng.randint(0, 58))
            )
            category = rng.choices(("billable", "module-bug", "pre-sales"), (8, 1, 1))[0]
            contact = rng.randint(5, 90)
            logged = max(5, contact * 3 // 4 // 5 * 5)
            charged = 0 if category != "billable" else (max(logged, 120) if plan == "none" else logged)
            item_id = len(rows["item"]) + 1
            subject = f"{rng.choice(SUBJECTS)} #{item_id}"
            occurred = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=12)
            rows["item"].append(
                {
                    "id": item_id,
                    "client_id": n,
                    "channel": "email",
                    "subject": subject,
                    "excerpt": "",
                    "occurred_at": occurred,
                    "thread_key": f"thread:{item_id}",
                    "source_key": f"bench:{item_id}",
                    "created_at": now,
                }
            )
            rows["proposal"].append(
                {
                    "id": item_id,
                    "source_item_id": item_id,
                    "client_id": n,
                    "status": "approved",
                    "category": category,
                    "minutes": logged,
                    "proposed_category": category,
                    "proposed_minutes": logged,
                    "contact_minutes": contact,
                    "rule": "bench",
                    "explanation": "bench",
                    "created_at": now,
                    "revision": 0,
                }
            )
            entry(
                n,
                day,
                "charge",
                -charged,
                subject,
                category=category,
                channel="email",
                proposal_id=item_id,
                source_item_id=item_id,
                request_key=f"thread:{item_id}",
                logged_minutes=logged if charged else 0,
            )
    with engine.begin() as connection:
        for table, key in (
            (Client, "client"),
            (ClientEmail, "email"),
            (Block, "block"),
            (SourceItem, "item"),
            (Proposal, "proposal"),
        ):
            connection.execute(sa.insert(table.__table__), rows[key])  # type: ignore[attr-defined]
        connection.execute(sa.insert(LedgerEntry.__table__), entries)  # type: ignore[attr-defined]
        if engine.dialect.name == "postgresql":
            for table in ("client", "client_email", "block", "source_item", "proposal", "ledger_entry"):
                connection.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
                )
    return len(entries)


def run_command(url: str, workdir: Path) -> tuple[float, str]:
    """(b): `psp statements MONTH --send` in a new process, its outbox in `workdir`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PSP_")}
    started = time.perf_counter()
    done = subprocess.run(
        [str(PSP), "--db", url, "statements", MONTH.label, "--send", "--json"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"psp statements failed: {done.stderr.strip()}")
    return elapsed, done.stdout


def phases(engine: Engine, settings: Settings, outbox: Path) -> dict[str, float]:
    """(b)'s work again in this process, phase by phase, as a resend (so the same work again).

    Its "render" phase is (a): the statements' documents from data already read, no database work.
    """
    clock = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = now - clock
        clock = now

    statements = gather(engine, settings, MONTH, None)
    lap("read and reconcile")
    rendered = render_all(statements, settings)
    lap("render (a)")
    with db.transaction(engine) as session:
        record_statements(session, settings, rendered, resend=True)
    lap("freeze and compose mail")
    deliver_pending(engine, OutboxMailer(outbox), pause_seconds=0)
    lap("deliver to the outbox")
    return timings


def bench(name: str, url: str, clients: int, seed: int, folder: Path) -> None:
    engine = db.make_engine(url, must_exist=False)
    db.migrate(engine)
    started = time.perf_counter()
    entries = fill(engine, clients, seed)
    print(
        f"\n{name}: {clients:,} clients, {entries:,} ledger entries (filled in {time.perf_counter() - started:.1f} s)"
    )
    workdir = folder / f"run-{name}"
    workdir.mkdir()
    total, _ = run_command(url, workdir)
    sent = len(list((workdir / "outbox").glob("*.eml")))
    split = phases(engine, Settings(), workdir / "again")
    engine.dispose()
    count = len(list((workdir / "again").glob("*.eml")))
    if not sent == count == clients:
        raise SystemExit(f"{name}: {sent} and {count} mails in the outboxes for {clients} clients")
    limit = split["render (a)"]
    per = 1000 / count
    print(f"  (a) render only (limit):             {limit * per:7.2f} ms/statement  ({limit:.2f} s for {count:,})")
    print(f"  (b) psp statements --send (process): {total * per:7.2f} ms/statement  ({total:.2f} s, {sent:,} mails)")
    print("      in-process phases of (b):")
    for phase, seconds in split.items():
        print(f"        {phase:<28} {seconds * per:7.2f} ms/statement")
    print(f"  ratio (b)/(a): {total / limit:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="psp-statements-bench-"))
    try:
        bench("SQLite", f"sqlite:///{folder / 'psp.db'}", args.clients, args.seed, folder)
        if not args.skip_postgres:
            try:
                base = postgres_url()
            except PostgresUnavailableError as exc:
                print(f"\nPostgreSQL skipped: {exc}")
                return
            name = f"psp_bench_statements_{os.getpid()}"
            try:
                bench("PostgreSQL", scratch_database(base, name), args.clients, args.seed, folder)
            finally:
                drop_database(base, name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
