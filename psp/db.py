"""The one place that opens databases: engines, migrations and the connection checks.

SQLite is the zero-set-up default; PostgreSQL serves several pollers and staff at once. On
SQLite every transaction starts with BEGIN IMMEDIATE: a deferred transaction that read first and
writes later would fail outright when another writer got in between, where an immediate one just
waits its turn (busy timeout).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlmodel import Session

from psp.errors import DatabaseError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_S = 30
# `revision = "0004"` and `down_revision = "0003"` (or None) as alembic writes them in each migration.
_REVISION_LINE = re.compile(r"^(down_revision|revision)\b[^=\n]*=\s*(?:['\"]([^'\"]+)['\"]|None)", re.MULTILINE)


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
        connect_args: dict[str, object] = {"connect_timeout": 5}
        if parsed.get_driver_name() == "psycopg":
            # psycopg prepares a statement on the server after five runs, and PostgreSQL may then
            # keep one generic plan for it. Planned while the intake tables were nearly empty, such
            # plans went on scanning them whole as a first poll filled them: the last tenth of a
            # 20,000-message poll stored 2.3x slower. Planning each statement afresh costs well
            # under a millisecond here.
            connect_args["prepare_threshold"] = None
        try:
            engine = sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)
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
    """Alembic, for the commands that change the schema; imported here because every other
    command would pay 0.1 s of start-up for it."""
    config: Config = importlib.import_module("alembic.config").Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (what `psp init` does; safe to repeat)."""
    importlib.import_module("alembic.command").upgrade(_alembic_config(engine), "head")


def schema_head() -> str:
    """The newest migration, read from the migration files themselves.

    Alembic's script directory says the same (tests/test_migrations.py checks that) but costs
    more than a quick command's own work to load. A new migration needs nothing else changed.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for kind, value in _REVISION_LINE.findall(path.read_text(encoding="utf-8")):
            (revisions if kind == "revision" else parents).add(value)
    heads = revisions - parents
    if len(heads) != 1:
        raise DatabaseError(f"the migrations in {MIGRATIONS} have {len(heads)} heads ({sorted(heads)}), not one")
    return heads.pop()


def _current_revision(connection: sa.Connection) -> str | None:
    if not sa.inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def require_current_schema(engine: Engine) -> None:
    """Refuse to work on a database that `psp init` has not brought up to date."""
    head = schema_head()
    with engine.connect() as connection:
        current = _current_revision(connection)
    if current is None:
        raise DatabaseError(f"database {_public(str(engine.url))} is not initialised: run `psp init`")
    if current != head:
        raise DatabaseError(f"database schema is at {current}, this version needs {head}: run `psp init`")


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session whose work is committed together at the end, or not at all."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session
