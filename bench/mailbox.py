"""A private Dovecot whose INBOX holds the benchmark corpus, filled without IMAP APPEND.

Why not APPEND: one APPEND per message is a round trip plus a server-side save each, and 20,000
of them would take longer than the measurements. Dovecot is a Maildir server, so the messages
are delivered the way an MDA does it — written to `Maildir/tmp/` and renamed into `new/` — in
the user's home, `STATE/home/<user>/Maildir` (see `tests.servers.dovecot`, which creates the
home owned by the user the mail processes run as). Dovecot indexes them on the first SELECT.

Order matters for the threading the poller does: Dovecot gives new messages their UIDs in the
order of the time stamp that starts each Maildir file name, so the names carry consecutive
seconds and UID k is message k of the corpus; `fill` checks that on a few UIDs as well as the
total count. The names also carry `S=` (size on disk) and `W=` (size with CRLF line ends, as
IMAP serves it), which spares Dovecot from computing sizes.

After the fill, one pass fetches every message (unmeasured) so that all measured phases find
Dovecot's index and the page cache equally warm; otherwise the first phase would pay for both.
"""

from __future__ import annotations

import os
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from imapclient import IMAPClient

from bench.corpus import Corpus
from tests.servers.dovecot import DovecotServer

FIRST_FILE_TIME = 1_700_000_000
FETCH_BATCH = 200


@dataclass(frozen=True)
class FillReport:
    """Times of the set-up steps, reported apart from the measurements."""

    write_seconds: float
    index_seconds: float
    warm_seconds: float
    exists: int


def open_client(server: DovecotServer) -> IMAPClient:
    """An imaps connection verified against the server's self-signed certificate."""
    context = ssl.create_default_context(cafile=server.cafile)
    client = IMAPClient(server.host, port=server.ssl_port, ssl=True, ssl_context=context, timeout=120)
    client._imap.debug = 0  # imapclient's default copies every response into a log string
    client.login(server.user, server.password)
    return client


def _write_maildir(server: DovecotServer, corpus: Corpus) -> None:
    home = server.state_dir / "home" / server.user
    owner = home.stat()
    maildir = home / "Maildir"
    for sub in ("", "tmp", "new", "cur"):
        (maildir / sub).mkdir(exist_ok=True)
        os.chown(maildir / sub, owner.st_uid, owner.st_gid)
    for number, raw in enumerate(corpus.messages()):
        wire = len(raw) + raw.count(b"\n")
        name = f"{FIRST_FILE_TIME + number}.M{number}P{os.getpid()}.psp-bench,S={len(raw)},W={wire}"
        temporary = maildir / "tmp" / name
        with temporary.open("wb") as handle:
            handle.write(raw)
        os.chown(temporary, owner.st_uid, owner.st_gid)
        temporary.rename(maildir / "new" / name)


def _check_order(client: IMAPClient, corpus: Corpus) -> None:
    """UID k must hold message k: a reordered mailbox would thread differently from real mail."""
    probes = sorted({1, corpus.count // 3, corpus.count // 2, corpus.count - 1, corpus.count} - {0})
    fetched = client.fetch(probes, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
    for uid in probes:
        header = fetched[uid][b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode()
        if corpus.message_ids[uid - 1] not in header:
            raise RuntimeError(f"UID {uid} is not message {uid} of the corpus: {header.strip()!r}")


def fill(server: DovecotServer, corpus: Corpus) -> FillReport:
    """Deliver the corpus into INBOX, let Dovecot index it, verify it, and warm the caches."""
    started = time.perf_counter()
    _write_maildir(server, corpus)
    written = time.perf_counter()
    client = open_client(server)
    try:
        exists = int(client.select_folder("INBOX")[b"EXISTS"])  # read-write: new/ moves to cur/
        if exists != corpus.count:
            raise RuntimeError(f"INBOX holds {exists} messages after the fill, expected {corpus.count}")
        _check_order(client, corpus)
        indexed = time.perf_counter()
        uids = client.search(["ALL"])
        for offset in range(0, len(uids), FETCH_BATCH):
            client.fetch(uids[offset : offset + FETCH_BATCH], ["BODY.PEEK[]"])
        warmed = time.perf_counter()
    finally:
        client.logout()
    return FillReport(written - started, indexed - written, warmed - indexed, exists)


def start_server(state_dir: Path, port_base: int) -> DovecotServer:
    server = DovecotServer(state_dir, port_base=port_base)
    server.start()
    return server
