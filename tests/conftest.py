"""Shared fixtures: a clean, migrated database per test, on SQLite and on PostgreSQL.

Every ledger test takes `engine` (or `db_url`) and so runs twice, once per backend. SQLite gets a
copy of a migrated template file; PostgreSQL gets one migrated scratch database per test session,
emptied (TRUNCATE … RESTART IDENTITY) before each test. Ledger triggers refuse DELETE, not
TRUNCATE, so emptying stays possible while entries stay append-only for the code under test.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from psp import db
from psp.config import Settings
from tests.servers.postgres import drop_database, postgres_url, scratch_database
from tests.servers.smtp import SmtpServer

BACKENDS = ("sqlite", "postgres")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "psp.db"
    engine = db.make_engine(f"sqlite:///{path}", must_exist=False)
    db.migrate(engine)
    engine.dispose()  # the last connection to close checkpoints the WAL into the file
    return path


@pytest.fixture(scope="session")
def postgres_test_url() -> Iterator[str]:
    """One migrated scratch database for the whole run, named by process so runs side by side never meet."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    base = postgres_url()
    name = f"psp_test_{worker}_{os.getpid()}"
    url = scratch_database(base, name)
    engine = db.make_engine(url)
    db.migrate(engine)
    engine.dispose()
    yield url
    drop_database(base, name)


def _empty_postgres(url: str) -> None:
    engine = sa.create_engine(db._normalise(url))
    tables = ", ".join(t.name for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty, migrated database on the parametrised backend."""
    if request.param == "sqlite":
        path = tmp_path / "psp.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_test_url")
    _empty_postgres(url)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = db.make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose transaction the test commits itself, like a command would."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def settings() -> Settings:
    return Settings()


@pytest.fixture
def relay() -> Iterator[SmtpServer]:
    """A real SMTP server on loopback that accepts everything (set `inbox.reply` to refuse)."""
    server = SmtpServer()
    server.start()
    yield server
    server.stop()
