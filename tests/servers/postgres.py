"""PostgreSQL for the test suite: the URL of a running server, and scratch databases.

The ledger must behave the same on SQLite and PostgreSQL, so tests run against a
real PostgreSQL. scripts/services/postgres.sh finds or starts one (the machine's
own server on 5432 if it trusts `postgres`, else a private cluster on 55432) and
prints its URL; this module runs it once per process.

Plain module without pytest imports, so bench/ can use it too.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "services" / "postgres.sh"
URL_LINE_PREFIX = "PSP_TEST_PG_URL="
# Names are also used unquoted in log lines and URLs: keep them plain.
_DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresUnavailableError(RuntimeError):
    """No PostgreSQL server could be found or started for the tests."""


@functools.cache
def postgres_url() -> str:
    """SQLAlchemy URL (postgresql+psycopg://...) of a running server for the tests.

    PSP_TEST_PG_URL in the environment wins (to point the tests at a server of
    your own); otherwise scripts/services/postgres.sh provides one. Cached, so
    the script runs at most once per process.
    """
    configured = os.environ.get("PSP_TEST_PG_URL")
    if configured:
        return configured
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        raise PostgresUnavailableError(
            f"{SCRIPT} failed (exit {result.returncode}); is PostgreSQL installed? "
            f"Run scripts/services/install.sh as root.\n{result.stderr.strip()}"
        )
    urls = [
        line.removeprefix(URL_LINE_PREFIX) for line in result.stdout.splitlines() if line.startswith(URL_LINE_PREFIX)
    ]
    if len(urls) != 1:
        raise PostgresUnavailableError(
            f"{SCRIPT} should print one {URL_LINE_PREFIX}... line, printed: {result.stdout!r}"
        )
    return urls[0]


def scratch_database(base_url: str, name: str) -> str:
    """(Re)create an empty database `name` on base_url's server and return its URL.

    Drops it first WITH (FORCE), which also ends connections a crashed earlier
    run left behind. base_url's own database serves as the maintenance
    connection, or `postgres` when that is the one being recreated.
    """
    if not _DATABASE_NAME.match(name):
        raise ValueError(f"database name {name!r} must match {_DATABASE_NAME.pattern}")
    with psycopg.connect(_maintenance_url(base_url, name), autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return urlunsplit(urlsplit(base_url)._replace(path=f"/{name}"))


def drop_database(base_url: str, name: str) -> None:
    """Drop a scratch database, ending any connection still open to it."""
    with psycopg.connect(_maintenance_url(base_url, name), autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _maintenance_url(base_url: str, name: str) -> str:
    """base_url's own database, or `postgres` when that is the one being dropped."""
    base = urlsplit(base_url)
    base_database = base.path.lstrip("/") or "postgres"
    maintenance_database = "postgres" if base_database == name else base_database
    # libpq understands postgresql:// but not SQLAlchemy's "+driver" suffix.
    libpq_scheme = base.scheme.split("+", 1)[0]
    return urlunsplit(base._replace(scheme=libpq_scheme, path=f"/{maintenance_database}"))
