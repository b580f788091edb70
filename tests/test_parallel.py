"""Preparing in worker processes gives exactly what preparing in-process gives."""

from __future__ import annotations

import base64
import random
import zlib
from pathlib import Path

from ingest.errors import NotAnEmail
from ingest.parallel import MIN_PARALLEL_BATCH, BatchParser
from ingest.store import PACK_MATCHING_LIMIT, pack, prepare

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
    assert [zlib.decompress(p.packed) for p in parallel] == raws
    assert isinstance(parallel[-1].parsed, NotAnEmail)
    assert str(parallel[-1].parsed) == str(inline[-1].parsed)


def test_packed_mail_unpacks_to_the_bytes_received() -> None:
    text = b"Subject: small\r\n\r\n" + b"Hello, the shop is down again.\r\n" * 20
    attachment = b"Subject: large\r\n\r\n" + base64.encodebytes(random.Random(7).randbytes(PACK_MATCHING_LIMIT * 2))
    for raw in (text, attachment):
        assert zlib.decompress(pack(raw)) == raw
        assert len(pack(raw)) < len(raw)
