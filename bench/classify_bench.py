"""Speed of the rules engine alone, on the labelled set: decisions per second.

    .venv/bin/python -m bench.classify_bench [--rounds 40]

Messages are parsed and turned into facts before the clock starts (parsing is intake's cost,
measured by the ingest benchmark); what is timed is `classify.engine.classify` with the default
rules and the labelled world's module catalogue. The target is 2,000 messages/s.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from classify.engine import classify
from classify.facts import ItemFacts, Project
from classify.service import Classifier
from ingest.noise import noise_reason
from ingest.parsing import parse_message
from psp.config import load_settings

LABELLED = Path(__file__).resolve().parents[1] / "tests" / "data" / "labelled"
TARGET = 2000


def labelled_facts() -> list[ItemFacts]:
    facts = []
    for path in sorted(LABELLED.glob("*.eml")):
        parsed = parse_message(path.read_bytes())
        staff = (parsed.sender or "").endswith("@harbourcart.example")
        facts.append(
            ItemFacts(
                sender="staff" if staff else "client",
                plan="psp",
                subject=parsed.subject,
                new_text=parsed.new_text,
                text=parsed.text,
                headers=parsed.headers,
                attachments=len(parsed.attachments),
                noise=noise_reason(parsed),
                projects=(Project(1, "B2B Wholesale Portal"),),
            )
        )
    return facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=40, help="passes over the labelled set")
    rounds = parser.parse_args().rounds
    classifier = Classifier.from_settings(load_settings(LABELLED / "psp.toml"))
    facts = labelled_facts()
    start = time.perf_counter()
    for _ in range(rounds):
        for item in facts:
            classify(item, classifier.rules, classifier.context, classifier.policy)
    seconds = time.perf_counter() - start
    decisions = rounds * len(facts)
    rate = decisions / seconds
    print(
        f"rules engine: {decisions} decisions in {seconds:.2f} s = {rate:,.0f} msg/s "
        f"({rate / TARGET:.1f} × the {TARGET:,} msg/s target)"
    )


if __name__ == "__main__":
    main()
