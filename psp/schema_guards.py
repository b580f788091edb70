"""Triggers that make the database itself refuse to change rows once written.

Ledger entries are append-only and a sent statement is frozen: our code never updates or deletes
them, and these triggers make sure nothing else does either (a stray script, a hand-typed UPDATE).
Used by the migrations that create those tables.
"""

from __future__ import annotations

from alembic import op


def refuse_changes(table: str, guard: str, message: str) -> None:
    """Make UPDATE and DELETE on `table` fail with `message` (a PostgreSQL function named `guard`)."""
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION {guard}() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION '{message}'; END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(f"CREATE TRIGGER {guard} BEFORE UPDATE OR DELETE ON {table} FOR EACH ROW EXECUTE FUNCTION {guard}()")
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
            )


def allow_changes(table: str, guard: str) -> None:
    """Undo `refuse_changes` before the table is dropped (SQLite's triggers go with the table)."""
    if op.get_context().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER {guard} ON {table}")
        op.execute(f"DROP FUNCTION {guard}()")
