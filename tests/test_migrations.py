"""Migrations build exactly the schema the models describe, on both backends, and undo cleanly."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from psp import db


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert differences == []


def test_migrations_go_down_and_up_again(engine: Engine) -> None:
    config = db._alembic_config(engine)
    command.downgrade(config, "base")
    with engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() is None
    db.migrate(engine)
    db.require_current_schema(engine)


def test_the_schema_head_read_from_the_files_is_alembics(engine: Engine) -> None:
    """`psp` checks the schema without loading alembic; both must name the same newest migration."""
    alembic_head = ScriptDirectory.from_config(db._alembic_config(engine)).get_current_head()
    assert db.schema_head() == alembic_head, (
        f"psp.db.schema_head() reads {db.schema_head()} from psp/migrations/versions, alembic says {alembic_head}:"
        " check the new migration's `revision` and `down_revision` lines"
    )


def test_postgresql_keeps_packed_mail_without_compressing_it_again(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL storage setting")
    query = sa.text(
        "SELECT attrelid::regclass::text, attstorage FROM pg_attribute"
        " WHERE attname = 'raw' AND attrelid IN ('mail_message'::regclass, 'quarantined_message'::regclass)"
    )
    with engine.connect() as connection:
        storage = {table: kind for table, kind in connection.execute(query)}
    assert storage == {"mail_message": "e", "quarantined_message": "e"}  # EXTERNAL: out of line, as it is
