"""`psp rules eval`: run the rules over a folder of labelled messages and measure them.

Messages are taken in file-name order (delivery order) and threads are followed as the poller
would: a reply sees the category the rules gave its thread earlier in the run, not the label, so
the figure is what the rules would really achieve.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from classify.engine import Decision
from classify.service import Classifier, World
from ingest.attribution import attribute
from ingest.errors import IngestError
from ingest.noise import noise_reason
from ingest.parsing import parse_message
from ingest.threads import thread_by_headers
from ledger.models import Category


@dataclass(frozen=True)
class Outcome:
    file: str
    expected: str
    decision: Decision


@dataclass(frozen=True)
class Evaluation:
    outcomes: tuple[Outcome, ...]

    @property
    def correct(self) -> int:
        return sum(1 for o in self.outcomes if o.decision.category.value == o.expected)

    @property
    def accuracy(self) -> float:
        return self.correct / len(self.outcomes) if self.outcomes else 0.0

    def confusion(self) -> Counter[tuple[str, str]]:
        """(expected, predicted) → count."""
        return Counter((o.expected, o.decision.category.value) for o in self.outcomes)

    def misclassified(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.decision.category.value != o.expected]


def read_labels(path: Path) -> dict[str, str]:
    """A TSV with `file` and `category` columns (more columns are ignored)."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
    except OSError as exc:
        raise IngestError(f"cannot read labels {path}: {exc.strerror}") from exc
    if not rows or not {"file", "category"} <= set(rows[0]):
        raise IngestError(f"{path}: needs a header line with 'file' and 'category' columns (tab-separated)")
    allowed = {c.value for c in Category}
    for number, row in enumerate(rows, start=2):
        if row["category"] not in allowed:
            raise IngestError(f"{path}:{number}: unknown category {row['category']!r}")
    return {row["file"]: row["category"] for row in rows}


def evaluate(folder: Path, labels: dict[str, str], classifier: Classifier, world: World) -> Evaluation:
    missing = sorted(name for name in labels if not (folder / name).is_file())
    if missing:
        raise IngestError(f"labelled files not found in {folder}: {', '.join(missing[:5])}")
    thread_of: dict[str, str] = {}
    outcomes = []
    for name in sorted(labels):
        parsed = parse_message((folder / name).read_bytes())
        who = attribute(parsed.sender, parsed.auth_results, world.directory)
        parents: Sequence[str] = (*parsed.in_reply_to, *reversed(parsed.references))
        inherited = thread_by_headers(parents, thread_of)
        decision = classifier.mail(parsed, who, world, noise=noise_reason(parsed), thread_category=inherited)
        if decision.category is not Category.IGNORED:
            thread_of[parsed.message_id] = inherited or decision.category.value
        outcomes.append(Outcome(name, labels[name], decision))
    return Evaluation(tuple(outcomes))
