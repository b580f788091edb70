"""Parsing in worker processes gives exactly what parsing in-process gives."""

from __future__ import annotations

from pathlib import Path

from ingest.errors import NotAnEmail
from ingest.parallel import MIN_PARALLEL_BATCH, BatchParser
from ingest.store import parse_or_refusal

LABELLED = Path(__file__).parent / "data" / "labelled"


def test_workers_parse_like_the_process_itself_in_order() -> None:
    raws = [p.read_bytes() for p in sorted(LABELLED.glob("*.eml"))] + [b"// not mail\n"]
    assert len(raws) >= MIN_PARALLEL_BATCH
    with BatchParser(workers=2) as parser:
        parallel = parser.submit(raws)()
    inline = [parse_or_refusal(raw) for raw in raws]
    assert [p for p in parallel if not isinstance(p, NotAnEmail)] == [
        p for p in inline if not isinstance(p, NotAnEmail)
    ]
    assert isinstance(parallel[-1], NotAnEmail)
    assert str(parallel[-1]) == str(inline[-1])
