"""Parsing on every core: mail-parser is the slowest step of intake, and it is pure.

`BatchParser.submit` hands a batch's raw messages to worker processes and returns at once, so the
caller can fetch the next batch (network) and store the previous one (database) while the workers
parse and compress them (`ingest.prepared.prepare`). Small batches, and machines with one core, are
prepared in-process: starting workers costs more than it saves there.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing.context import BaseContext
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from ingest.prepared import Prepared

# Below this many messages in a batch, parsing in-process beats shipping bytes to workers.
MIN_PARALLEL_BATCH = 32
CHUNK = 16
Batch = TypeVar("Batch")
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent() -> None:
    """Worker initialiser: on Linux, be killed when the poller dies.

    A forked worker holds copies of the poller's sockets; if it outlived a poller that was
    killed, the poller's PostgreSQL session — and the folder lock it holds — would stay open.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:  # the parent died before we could ask
            os._exit(1)


def _prepare_all(raws: Sequence[bytes]) -> list[Prepared]:
    # The parser is loaded with the first batch, not with this module: a poll that finds no new
    # mail never needs it, and starts 0.05 s sooner.
    prepare = importlib.import_module("ingest.prepared").prepare
    return [prepare(raw) for raw in raws]


class BatchParser:
    """A pool of parsing processes, started on first use and stopped on exit."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers if workers is not None else (os.cpu_count() or 1)
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> BatchParser:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def submit(self, raws: Sequence[bytes]) -> Callable[[], list[Prepared]]:
        """Start preparing; call the result to wait for the prepared batch, in order."""
        if self.workers <= 1 or len(raws) < MIN_PARALLEL_BATCH:
            prepared = _prepare_all(raws)
            return lambda: prepared
        if self._pool is None:
            # Forking is cheapest, but unsafe in a process that runs threads (watch mode): there
            # a fork server starts the workers instead.
            context: BaseContext
            if threading.active_count() > 1:
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(["ingest.prepared"])
            else:
                context = multiprocessing.get_context("fork")
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_die_with_parent)
        futures: list[Future[list[Prepared]]] = [
            self._pool.submit(_prepare_all, raws[i : i + CHUNK]) for i in range(0, len(raws), CHUNK)
        ]
        return lambda: [prepared for future in futures for prepared in future.result()]

    def pipeline(
        self,
        batches: Iterable[Batch],
        raws: Callable[[Batch], Sequence[bytes]],
        store: Callable[[Batch, Callable[[], list[Prepared]]], None],
    ) -> None:
        """Store each batch while the workers prepare the next one.

        Batch k+1 is read from `batches` (a fetch, a file read) and handed to the workers before
        batch k is stored, so reading, parsing and storing overlap; batches are stored in order.
        """
        waiting: tuple[Batch, Callable[[], list[Prepared]]] | None = None
        for batch in batches:
            current = (batch, self.submit(raws(batch)))
            if waiting is not None:
                store(*waiting)
            waiting = current
        if waiting is not None:
            store(*waiting)
