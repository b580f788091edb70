"""Phase (a), the raw limit: fetch every message over imaps and parse it, storing nothing.

This is the floor any IMAP poller built on imapclient and mail-parser pays in one thread: TLS,
`UID SEARCH ALL`, `UID FETCH BODY.PEEK[]` in batches, imapclient's response parsing, and
`mailparser.parse_from_bytes` on each message. It runs in its own process (started by
`bench.ingest_bench`) so that its peak RSS is its own. imaplib's debug level is set to 0 as the
poller does: imapclient raises it, and imaplib then builds a text copy of every response line.

Usage: PSP_IMAP_PASSWORD=... python -m bench.raw_fetch --port P --user U --cafile F [--no-parse]
Prints one JSON object: messages, bytes, parse_failures, seconds (inside the process).
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import time

import mailparser
from imapclient import IMAPClient

# The same failures `ingest.parsing.parse_message` turns into a quarantine; counted, not fatal.
_PARSER_FAILURES = (ValueError, LookupError, TypeError, AttributeError, AssertionError, RecursionError)


def run(host: str, port: int, user: str, cafile: str, batch_size: int, parse: bool) -> dict[str, float | int]:
    started = time.perf_counter()
    context = ssl.create_default_context(cafile=cafile)
    client = IMAPClient(host, port=port, ssl=True, ssl_context=context, timeout=120)
    client._imap.debug = 0
    client.login(user, os.environ["PSP_IMAP_PASSWORD"])
    count = total = failures = 0
    try:
        client.select_folder("INBOX", readonly=True)
        uids = client.search(["ALL"])
        for offset in range(0, len(uids), batch_size):
            fetched = client.fetch(uids[offset : offset + batch_size], ["BODY.PEEK[]"])
            for data in fetched.values():
                raw = data[b"BODY[]"]
                count += 1
                total += len(raw)
                if parse:
                    try:
                        mailparser.parse_from_bytes(raw)
                    except _PARSER_FAILURES:
                        failures += 1
    finally:
        client.logout()
    return {
        "messages": count,
        "bytes": total,
        "parse_failures": failures,
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Fetch (and parse) every message of INBOX over imaps.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--cafile", required=True)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--no-parse", action="store_true", help="fetch only: the IMAP transport alone")
    args = parser.parse_args()
    result = run(args.host, args.port, args.user, args.cafile, args.batch_size, not args.no_parse)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
