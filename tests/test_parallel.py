"""Preparing in worker processes gives exactly what preparing in-process gives."""

from __future__ import annotations

import base64
import random
import zlib
from pathlib import Path

from ingest.errors import NotAnEmail
from ingest.packing import pack, unpack
from ingest.parallel import MIN_PARALLEL_BATCH, BatchParser
from ingest.prepared import prepare

LABELLED = Path(__file__).parent / "data" / "labelled"


def test_workers_parse_like_the_process_itself_in_order() -> None:
    raws = [p.read_bytes() for p in sorted(LABELLED.glob("*.eml"))] + [b"// not mail\n"]
    assert len(raws) >= MIN_PARALLEL_BATCH
    with BatchParser(workers=2) as parser:
        parallel = parser.submit(raws)()
    inline = [prepare(raw) for raw in raws]
    assert [p for p in parallel if not isinstance(p.parsed, NotAnEmail)] == [
        p for p in inline if not isinstance(p.parsed, NotAnEmail)
    ]
    assert [unpack(p.packed) for p in parallel] == raws
    assert isinstance(parallel[-1].parsed, NotAnEmail)
    assert str(parallel[-1].parsed) == str(inline[-1].parsed)


def test_packed_mail_unpacks_to_the_bytes_received() -> None:
    text = b"Subject: small\r\n\r\n" + b"Hello, the shop is down again.\r\n" * 20
    attachment = b"Subject: large\r\n\r\n" + base64.encodebytes(random.Random(7).randbytes(64 * 1024))
    for raw in (text, attachment, b""):
        assert unpack(pack(raw)) == raw
    assert len(pack(text)) < len(text) / 5
    assert len(pack(attachment)) < len(attachment) * 0.8  # base64 carries 6 bits in each 8


def test_mail_packed_by_earlier_versions_still_unpacks() -> None:
    """Rows stored before Zstandard are zlib streams, and stay readable."""
    raw = b"Subject: kept since 2026\r\n\r\nHello\r\n"
    assert unpack(zlib.compress(raw, 6)) == raw
    assert unpack(zlib.compress(raw, 9)) == raw
