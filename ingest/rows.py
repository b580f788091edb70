"""Rows written in bulk: one executemany per table through SQLAlchemy Core, ids taken first.

Intake writes thousands of rows a batch (mail and tickets alike); the ORM would build, validate
and track an object per row and, on SQLite, send an INSERT per row to learn its id.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, SQLModel

Row = dict[str, Any]
"""The columns of a row about to be inserted (with its `id` once `insert_rows` gave one)."""


def insert_rows(session: Session, model: type[SQLModel], rows: list[Row], *, with_ids: bool = True) -> list[Row]:
    """Insert rows of one table with one executemany, giving each its `id` first.

    The ids are taken before the INSERT: SQLite cannot match RETURNING rows to the rows of a
    multi-row INSERT, so SQLAlchemy would send one statement per row to learn them.
    """
    if rows:
        table: sa.Table = model.__table__  # type: ignore[attr-defined]
        if with_ids:
            for row, new_id in zip(rows, _new_ids(session, table, len(rows)), strict=True):
                row["id"] = new_id
        session.execute(sa.insert(table), rows)
    return rows


def _new_ids(session: Session, table: sa.Table, count: int) -> list[int]:
    if session.get_bind().dialect.name == "postgresql":
        sequence = sa.func.pg_get_serial_sequence(table.name, "id")
        series = sa.func.generate_series(1, count)
        return list(session.execute(sa.select(sa.func.nextval(sequence)).select_from(series)).scalars())
    # SQLite: this transaction holds the database's write lock (BEGIN IMMEDIATE), so the ids
    # above the highest are ours until it ends.
    highest = session.execute(sa.select(sa.func.max(table.c.id))).scalar() or 0
    return list(range(highest + 1, highest + 1 + count))
