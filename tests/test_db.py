"""The engines psp opens: what each backend is asked to do differently."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine


def test_postgresql_plans_every_statement_afresh(engine: Engine) -> None:
    """No server-side prepared statements: their generic plans outlive the table sizes they were made for."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL prepares statements; SQLite's own statement cache has no such plans")
    lookup = sa.text("SELECT count(*) FROM mail_message WHERE content_hash = :hash")
    with engine.connect() as connection:
        for _ in range(10):
            connection.execute(lookup, {"hash": "0" * 64})
        prepared = connection.execute(sa.text("SELECT count(*) FROM pg_prepared_statements")).scalar_one()
    assert prepared == 0
