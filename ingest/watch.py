"""`psp poll --watch`: stay connected, wake on IMAP IDLE (or poll on a timer), reconnect with backoff.

One thread per account. After each pass over an account's folders, the connection waits in IDLE on
the account's first folder (new mail there wakes it at once; the other folders are read at each
wake and at least every `idle_seconds`). A server without IDLE is polled every `poll_seconds`.
Any connection failure is recorded for the health view and retried after 1, 2, 4 … 300 seconds.
"""

from __future__ import annotations

import logging
import threading
import time

from imapclient import IMAPClient
from sqlalchemy.engine import Engine

from ingest.imap import CONNECTION_ERRORS, BatchLog, ImapError, connect, poll_folder, record_error
from ingest.parallel import BatchParser
from psp.config import ImapAccount, Settings

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 300
IDLE_CHECK_SECONDS = 1  # how often an IDLE wait looks at the stop flag


def wait_for_news(client: IMAPClient, folder: str, settings: Settings, stop: threading.Event) -> None:
    """Return when the folder has news, the IDLE period is over, or we are asked to stop."""
    if b"IDLE" not in client.capabilities():
        stop.wait(settings.mail.poll_seconds)
        return
    client.select_folder(folder, readonly=True)
    client.idle()
    try:
        deadline = time.monotonic() + settings.mail.idle_seconds
        while not stop.is_set() and time.monotonic() < deadline:
            if client.idle_check(timeout=IDLE_CHECK_SECONDS):
                return
    finally:
        client.idle_done()


def watch_account(
    engine: Engine, settings: Settings, account: ImapAccount, stop: threading.Event, on_batch: BatchLog
) -> None:
    with BatchParser(settings.mail.parse_workers or None) as parser:
        _watch(engine, settings, account, stop, on_batch, parser)


def _watch(
    engine: Engine,
    settings: Settings,
    account: ImapAccount,
    stop: threading.Event,
    on_batch: BatchLog,
    parser: BatchParser,
) -> None:
    backoff = 1
    while not stop.is_set():
        folder = account.folders[0]
        try:
            client = connect(account)
            try:
                backoff = 1
                while not stop.is_set():
                    for folder in account.folders:
                        poll_folder(engine, settings, account, client, folder, on_batch, parser)
                    wait_for_news(client, account.folders[0], settings, stop)
            finally:
                try:
                    client.logout()
                except CONNECTION_ERRORS:
                    log.debug("%s: logout failed on a broken connection", account.name)
        except (*CONNECTION_ERRORS, ImapError) as exc:
            log.warning("%s/%s: %s; reconnecting in %s s", account.name, folder, exc, backoff)
            record_error(engine, account.name, folder, str(exc))
            stop.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)


def watch(engine: Engine, settings: Settings, stop: threading.Event, on_batch: BatchLog) -> None:
    """Watch every configured account until `stop` is set."""
    threads = [
        threading.Thread(
            target=watch_account, args=(engine, settings, account, stop, on_batch), name=f"imap-{account.name}"
        )
        for account in settings.imap
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
