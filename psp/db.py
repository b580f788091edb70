"""The one place that opens databases: engines, migrations and the connection checks.

SQLite is the zero-set-up default; PostgreSQL serves several pollers and staff at once. On
SQLite every transaction starts with BEGIN IMMEDIATE: a deferred transaction that read first and
writes later would fail outright when another writer got in between, where an immediate one just
waits its turn (busy timeout).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlmodel import Session

from psp.errors import DatabaseError

MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_S = 30


def _public(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _normalise(url: str) -> str:
    """Plain `postgresql://` URLs use psycopg 3, the driver we ship."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_immediate(engine: Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, *, must_exist: bool = True) -> Engine:
    """Open an engine and check that the database answers.

    `must_exist` refuses a SQLite file that is not there yet, so a mistyped path is an error
    rather than a new empty database; only `psp init` and `psp demo` create one.
    """
    url = _normalise(url)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseError(f"not a database URL: {url!r}") from exc
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            path = Path(database)
            if must_exist and not path.exists():
                raise DatabaseError(f"no database at {path}: run `psp init` first")
            if not path.parent.exists():
                raise DatabaseError(f"cannot create database {path}: folder {path.parent} does not exist")
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        _sqlite_immediate(engine)
    else:
        try:
            engine = sa.create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5})
        except ModuleNotFoundError as exc:
            raise DatabaseError(f"no driver for {_public(url)}: {exc.name} is not installed") from exc
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseError(f"cannot reach database {_public(url)}: {reason}") from exc
    return engine


def _alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (what `psp init` does; safe to repeat)."""
    command.upgrade(_alembic_config(engine), "head")


def require_current_schema(engine: Engine) -> None:
    """Refuse to work on a database that `psp init` has not brought up to date."""
    head = ScriptDirectory.from_config(_alembic_config(engine)).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current is None:
        raise DatabaseError(f"database {_public(str(engine.url))} is not initialised: run `psp init`")
    if current != head:
        raise DatabaseError(f"database schema is at {current}, this version needs {head}: run `psp init`")


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session whose work is committed together at the end, or not at all."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session
