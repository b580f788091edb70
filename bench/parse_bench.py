"""What a parsing worker spends per message, against mail-parser parsing the same message.

    .venv/bin/python -m bench.parse_bench [--messages 2000] [--rounds 4]

The poll's pace is set by its parsing workers (see BENCHMARKS.md), so this times, in one
process and without IMAP or a database, each step a worker runs on the benchmark corpus (as
fetched, with CRLF line ends): the email package's parse alone, mail-parser's
`parse_from_bytes` (what the raw limit (a) of the ingest benchmark runs), our `parse_message`,
packing, and `prepare` (parse and pack, what a worker does). Every step runs `--rounds` times
over all messages, interleaved, and the least disturbed round (least CPU time) is kept, because
this machine's speed drifts between rounds. Ratios are against mail-parser measured in the
same run.
"""

from __future__ import annotations

import argparse
import email
import time
from collections.abc import Callable

import mailparser

from bench.corpus import load_or_generate
from ingest.packing import pack
from ingest.parsing import parse_message
from ingest.prepared import prepare

STEPS: dict[str, Callable[[bytes], object]] = {
    "email package parse only": email.message_from_bytes,
    "mail-parser parse_from_bytes": mailparser.parse_from_bytes,
    "psp parse_message": parse_message,
    "psp pack": pack,
    "psp prepare (parse + pack)": prepare,
}
BASELINE = "mail-parser parse_from_bytes"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    messages = [raw.replace(b"\n", b"\r\n") for raw in load_or_generate(args.messages).messages()]
    size = sum(map(len, messages))
    best = dict.fromkeys(STEPS, float("inf"))
    for _ in range(args.rounds):
        for name, step in STEPS.items():
            started = time.process_time()
            for raw in messages:
                step(raw)
            best[name] = min(best[name], time.process_time() - started)
    print(f"{len(messages):,} messages, {size / 1e6:.1f} MB; CPU time of the best of {args.rounds} rounds")
    print(f"{'step':32s} {'CPU s':>7s} {'ms/msg':>7s} {'MB/s':>7s} {'× mail-parser':>14s}")
    for name, seconds in best.items():
        per_message = seconds / len(messages) * 1000
        ratio = seconds / best[BASELINE]
        print(f"{name:32s} {seconds:7.2f} {per_message:7.3f} {size / 1e6 / seconds:7.1f} {ratio:14.2f}")


if __name__ == "__main__":
    main()
