"""Request Tracker in `psp poll --watch`: a sync every `[rt].interval_seconds`, beside the IMAP watchers.

RT has no push, so it is polled. A failed sync (RT down, credentials refused) is logged, kept in
the sync state with the reason, and tried again at the next interval; the cursor never moves
past what was stored, so nothing is lost in between.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Engine

from ingest.errors import IngestError
from ingest.rt_sync import sync_rt
from ingest.summary import IntakeSummary
from psp.config import Settings

log = logging.getLogger(__name__)

SyncLog = Callable[[IntakeSummary], None]


def watch_rt(engine: Engine, settings: Settings, stop: threading.Event, on_sync: SyncLog) -> None:
    """Sync until `stop` is set, one sync per interval."""
    while not stop.is_set():
        try:
            on_sync(sync_rt(engine, settings))
        except IngestError as exc:
            log.warning("rt: %s; trying again in %s s", exc, settings.rt.interval_seconds)
        stop.wait(settings.rt.interval_seconds)


@contextmanager
def watching_rt(engine: Engine, settings: Settings, stop: threading.Event, on_sync: SyncLog) -> Iterator[None]:
    """Run the RT watcher in a thread for the duration of the block (if RT is watched at all)."""
    if not settings.rt.watched:
        yield
        return
    thread = threading.Thread(target=watch_rt, args=(engine, settings, stop, on_sync), name="rt")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
