"""Intake runs: read raw messages from a source in batches, each batch one transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path

from sqlalchemy.engine import Engine

from ingest.files import RawMessage, read_paths
from ingest.parallel import BatchParser
from ingest.prepared import Prepared
from ingest.store import BatchStore
from ingest.summary import IntakeSummary
from psp import db
from psp.config import Settings

Progress = Callable[[IntakeSummary], None]


def batches(messages: Iterable[RawMessage], size: int) -> Iterator[list[RawMessage]]:
    iterator = iter(messages)
    while batch := list(islice(iterator, size)):
        yield batch


def ingest_files(
    engine: Engine, settings: Settings, paths: Sequence[Path], progress: Progress | None = None
) -> IntakeSummary:
    """Import .eml files, Maildirs and mbox files; a re-import stores nothing twice."""
    total = IntakeSummary()

    def store(batch: list[RawMessage], prepared: Callable[[], list[Prepared]]) -> None:
        with db.transaction(engine) as session:
            summary = BatchStore(session, settings).store_prepared(batch, prepared())
        total.add(summary)
        if progress is not None:
            progress(summary)

    with BatchParser(settings.mail.parse_workers or None) as parser:
        parser.pipeline(batches(read_paths(paths), settings.mail.batch_size), _raws, store)
    return total


def _raws(batch: list[RawMessage]) -> list[bytes]:
    return [message.raw for message in batch]
