"""`psp poll --watch`: the long-running side of `psp poll`, kept apart so that a poll from cron does
not load it (IDLE, reconnection and the Request Tracker sync with its ticket storage)."""

from __future__ import annotations

import logging
import signal
import threading

import typer
from sqlalchemy.engine import Engine

from ingest.imap import BatchLog
from ingest.rt_watch import watching_rt
from ingest.watch import watch
from psp.config import Settings


def run(engine: Engine, settings: Settings, log_batch: BatchLog) -> None:
    """Watch the IMAP accounts and sync RT until SIGTERM or Ctrl-C."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with watching_rt(engine, settings, stop, lambda s: typer.echo(f"rt: {s.line()}", err=True)):
            watch(engine, settings, stop, log_batch)
            stop.wait()  # with RT alone, no IMAP watcher holds the command open
    except KeyboardInterrupt:
        stop.set()
