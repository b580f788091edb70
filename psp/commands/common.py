"""What every command shares: the application context and parsing of dates and output."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

import typer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from ingest.summary import IntakeSummary
from ledger.errors import InvalidInputError
from ledger.tables import text_table
from psp import db
from psp.config import Settings


@dataclass
class AppContext:
    """What every command needs: settings, the database, who is acting."""

    settings: Settings
    database_url: str
    actor: str
    _engine: Engine | None = field(default=None, repr=False)

    def engine(self, *, create: bool = False) -> Engine:
        if self._engine is None:
            self._engine = db.make_engine(self.database_url, must_exist=not create)
            if not create:
                db.require_current_schema(self._engine)
        return self._engine

    def close(self) -> None:
        """Release the database connections (the root command calls this when it ends)."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with db.transaction(self.engine()) as session:
            yield session

    def today(self) -> date:
        return datetime.now(self.settings.policy.zone).date()


def context(ctx: typer.Context) -> AppContext:
    obj = ctx.find_root().obj
    assert isinstance(obj, AppContext)
    return obj


def parse_day(text: str | None, what: str = "date") -> date | None:
    """`2026-11-03` → date; anything else is a one-line error naming the value."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(f"bad {what} {text!r}: use YYYY-MM-DD") from None


def noon_utc(day: date, settings: Settings) -> datetime:
    """A day given on the command line, as a moment: local noon, so it stays that day in UTC."""
    return datetime.combine(day, time(12), settings.policy.zone).astimezone(UTC)


def print_listing(
    rows: Sequence[Any],
    as_json: bool,
    headers: Sequence[str],
    cells: Callable[[Any], Sequence[object]],
    numeric: set[int] | None = None,
) -> None:
    """A listing command's output: the rows' fields as JSON, or the chosen cells as a table."""
    if as_json:
        print_json([asdict(row) for row in rows])
    else:
        typer.echo(text_table(headers, [cells(row) for row in rows], numeric=numeric))


def print_json(value: object) -> None:
    """With --json a command prints this and nothing else on stdout."""
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def print_summary(summary: IntakeSummary, as_json: bool) -> None:
    """An intake run's counts: the JSON the CLI contract names, or one line."""
    if as_json:
        print_json(asdict(summary))
    else:
        typer.echo(summary.line())
