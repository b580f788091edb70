"""Latency of the web pages under concurrent requests: the client's report and the review queue.

    .venv/bin/python -m bench.web_bench [--postgres] [--concurrency 4] [--workers 2] [--requests 400]

Loads a fresh database with one client holding 10,000 ledger entries (three years of support,
a block every 30 entries) and 2,000 pending proposals spread over 20 clients, 4 per thread, each
with a 400-character excerpt; then starts `psp serve` in its own process (one uvicorn worker,
as shipped) and drives it from this process with `--concurrency` threads, each with its own
HTTP connection. Measured: the report page (first page, other pages, one month), the CSV of a
month, and the staff review queue (a page of the 2,000 pending proposals). Prints p50/p95/p99 against
the targets: report pages p95 < 100 ms, review queue p95 < 200 ms. SQLite in a temporary folder,
or with --postgres a scratch database on the test server (tests/servers/postgres.py), dropped after.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlmodel import Session

from ledger.clients import add_client
from ledger.models import Client, LedgerEntry, Proposal, SourceItem
from psp import db
from psp.config import Settings
from psp.web.accounts import add_staff
from psp.web.links import issue_link
from tests.servers.postgres import drop_database, postgres_url, scratch_database
from tests.servers.web import free_port

ENTRIES = 10_000
SCRATCH = f"psp_web_bench_{os.getpid()}"
PENDING = 2_000
CLIENTS = 20
PASSWORD = "bench password 1"
STAFF = "bench@example.test"
TARGETS_MS = {"report": 100.0, "review": 200.0}
START = date(2023, 11, 1)
WORDS = ("checkout", "shipping", "module", "customer", "order", "invoice", "upgrade", "payment", "error", "cache")


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def load(engine: sa.Engine) -> tuple[str, list[str]]:
    """Fill the database; returns the big client's slug and the months that have entries."""
    rng = random.Random(7)
    with db.transaction(engine) as session:
        clients = [add_client(session, "bench", f"Client {n:02d}") for n in range(CLIENTS)]
        big = clients[0]
        add_staff(session, "bench", STAFF, PASSWORD)
    rows = []
    balance = 0
    for n in range(ENTRIES):
        day = START + timedelta(days=n * 3 * 365 // ENTRIES)
        if n % 30 == 0 or balance < 0:
            minutes, kind, category, subject = 360, "block", None, f"PSP block purchased (360 min), ref INV-{n}"
        else:
            minutes = -rng.choice((0, 5, 10, 15, 20, 30, 45, 60))
            kind, category, subject = (
                "charge",
                "billable" if minutes else "pre-sales",
                f"Support item {n}: {_text(rng, 5)}",
            )
        balance += minutes
        rows.append(
            {
                "client_id": big.id,
                "effective_on": day,
                "posted_at": datetime.combine(day, day_time(12), UTC),
                "kind": kind,
                "category": category,
                "minutes": minutes,
                "logged_minutes": -minutes if kind == "charge" else 0,
                "channel": None if kind == "block" else "email",
                "subject": subject,
                "idempotency_key": f"bench:{n}",
                "reason": "bench",
                "actor": "bench",
            }
        )
    items = []
    for n in range(PENDING):
        client = clients[n % CLIENTS]
        items.append(
            {
                "client_id": client.id,
                "channel": "email",
                "subject": f"Request {n // 4}: {_text(rng, 6)}",
                "excerpt": _text(rng, 60),
                "sender": f"someone{n % CLIENTS}@client{n % CLIENTS}.example",
                "occurred_at": datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=n),
                "thread_key": f"thread:{n % CLIENTS}:{n // (4 * CLIENTS)}",
                "source_key": f"bench:item:{n}",
                "created_at": datetime.now(UTC),
            }
        )
    with db.transaction(engine) as session:
        session.execute(sa.insert(LedgerEntry), rows)
        session.execute(sa.insert(SourceItem), items)
        ids = session.execute(sa.select(SourceItem.id, SourceItem.client_id).order_by(SourceItem.id)).all()
        minutes = [rng.choice((5, 10, 15, 20, 30)) for _ in ids]
        session.execute(
            sa.insert(Proposal),
            [
                {
                    "source_item_id": item_id,
                    "client_id": client_id,
                    "status": "pending",
                    "category": "billable",
                    "minutes": m,
                    "proposed_category": "billable",
                    "proposed_minutes": m,
                    "contact_minutes": m * 4 // 3,
                    "rule": "client-support",
                    "explanation": f"rule client-support: sender is client; contact {m * 4 // 3} min × 0.75 → {m} min",
                    "created_at": datetime.now(UTC),
                    "revision": 0,
                }
                for (item_id, client_id), m in zip(ids, minutes, strict=True)
            ],
        )
    # Statistics (and, on PostgreSQL, the visibility map for index-only scans), as autovacuum would.
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            "VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"
        )
    months = sorted({r["effective_on"].strftime("%Y-%m") for r in rows})
    return big.slug, months


@dataclass
class Result:
    name: str
    target: str
    latencies: list[float]
    errors: int

    def pct(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(p / 100 * len(ordered)) - 1)] * 1000


def drive(
    name: str,
    target: str,
    base: str,
    paths: Callable[[int], str],
    requests: int,
    concurrency: int,
    cookies: httpx.Cookies | None = None,
) -> Result:
    """`requests` GETs spread over `concurrency` threads, each with its own keep-alive connection."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(requests))

    def worker() -> None:
        nonlocal errors
        with httpx.Client(base_url=base, cookies=cookies, timeout=30) as client:
            client.get(paths(0))  # warm the connection
            while True:
                with lock:
                    n = next(counter, None)
                if n is None:
                    return
                started = time.perf_counter()
                response = client.get(paths(n))
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    errors += response.status_code != 200

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Result(name, target, latencies, errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", action="store_true", help="a scratch PostgreSQL database instead of SQLite")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="psp serve --workers")
    parser.add_argument("--requests", type=int, default=400, help="per report measurement; the queue gets a quarter")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = scratch_database(postgres_url(), SCRATCH) if args.postgres else f"sqlite:///{Path(folder) / 'psp.db'}"
        engine = db.make_engine(url, must_exist=False)
        db.migrate(engine)
        started = time.perf_counter()
        slug, months = load(engine)
        port = free_port()
        with Session(engine) as session:
            client = session.execute(sa.select(Client).where(Client.slug == slug)).scalar_one()
            link = issue_link(session, "bench", client, Settings().web)
            session.commit()
        engine.dispose()
        print(
            f"loaded {ENTRIES} entries, {PENDING} pending proposals in {time.perf_counter() - started:.1f} s "
            f"({engine.dialect.name})"
        )
        config = Path(folder) / "psp.toml"
        config.write_text("[web]\nsecure_cookies = false\n")  # plain HTTP on loopback
        env = {k: v for k, v in os.environ.items() if not k.startswith("PSP_")}
        server = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("psp")),
                "--config",
                str(config),
                "--db",
                url,
                "serve",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        token = link.url.rsplit("/r/", 1)[1]
        try:
            _wait(base)
            cookies = _login(base)
            rng = random.Random(3)
            pages = (ENTRIES + 49) // 50
            results = [
                drive("report, first page", "report", base, lambda n: f"/r/{token}", args.requests, args.concurrency),
                drive(
                    "report, random page",
                    "report",
                    base,
                    lambda n: f"/r/{token}?page={rng.randint(1, pages)}",
                    args.requests,
                    args.concurrency,
                ),
                drive(
                    "report, one month",
                    "report",
                    base,
                    lambda n: f"/r/{token}?month={rng.choice(months)}",
                    args.requests,
                    args.concurrency,
                ),
                drive(
                    "report CSV, one month",
                    "report",
                    base,
                    lambda n: f"/r/{token}/report.csv?month={rng.choice(months)}",
                    args.requests,
                    args.concurrency,
                ),
                drive(
                    "review queue (2,000)",
                    "review",
                    base,
                    lambda n: "/staff/review",
                    max(20, args.requests // 4),
                    args.concurrency,
                    cookies,
                ),
            ]
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
            if args.postgres:
                drop_database(postgres_url(), SCRATCH)
    print(f"\nconcurrency {args.concurrency}, {args.workers} server process(es), {os.cpu_count()} cores\n")
    print(f"{'page':<26}{'requests':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'target p95':>12}  ok")
    failed = False
    for r in results:
        goal = TARGETS_MS[r.target]
        ok = r.pct(95) < goal and r.errors == 0
        failed |= not ok
        print(
            f"{r.name:<26}{len(r.latencies):>9}{r.pct(50):>9.1f}{r.pct(95):>9.1f}{r.pct(99):>9.1f}"
            f"{'< ' + format(goal, '.0f'):>12}  {'yes' if ok else 'NO'}{f' ({r.errors} errors)' if r.errors else ''}"
        )
    print(f"\nmedian of all: {statistics.median(x for r in results for x in r.latencies) * 1000:.1f} ms")
    sys.exit(1 if failed else 0)


def _wait(base: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{base}/staff/login")
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _login(base: str) -> httpx.Cookies:
    with httpx.Client(base_url=base) as client:
        form = client.get("/staff/login").text
        found = re.search(r'name="csrf" value="([^"]+)"', form)
        assert found is not None
        response = client.post("/staff/login", data={"email": STAFF, "password": PASSWORD, "csrf": found.group(1)})
        assert response.status_code == 303, response.text
        return client.cookies


if __name__ == "__main__":
    main()
