"""Alembic environment: runs migrations on the engine that `psp.db.migrate` hands over."""

from alembic import context
from sqlmodel import SQLModel

import ingest.models  # registers the tables on SQLModel.metadata, as each import below does
import ingest.ticket_models  # noqa: F401
import ledger.models  # noqa: F401
import notify.models  # noqa: F401
import psp.web.models  # noqa: F401

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
