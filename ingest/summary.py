"""The counts an intake run reports, kept apart so that reporting them loads nothing else."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class IntakeSummary:
    """Counts of items, as `psp ingest/poll --json` print them."""

    read: int = 0
    stored: int = 0
    duplicate: int = 0
    ignored: int = 0
    quarantined: int = 0

    def add(self, other: IntakeSummary) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    def line(self) -> str:
        """`5 read, 4 stored, 0 duplicate, 1 ignored, 0 quarantined`: the counts as a log line."""
        return ", ".join(f"{value} {name}" for name, value in asdict(self).items())
