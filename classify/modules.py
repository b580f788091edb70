"""The module catalogue: which module a message is about, and whether it is ours.

A module is named in prose ("the gift wrap module") or shows up in an error trace
(`includes/modules/easy_gift_wrap/...`). A trace is the stronger evidence: when a client blames
our module but the PHP warning points into a third-party one, the trace decides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

# A line that belongs to an error report: PHP warnings/notices, stack frames, file:line mentions.
_TRACE_LINE = re.compile(
    r"(?:warning|notice|fatal error|deprecated|exception|stack trace|^\s*#\d+|\.php\b|line \d+)", re.IGNORECASE
)


class Ownership(StrEnum):
    OURS = "ours"
    THIRD_PARTY = "third_party"


@dataclass(frozen=True)
class Module:
    name: str
    ownership: Ownership
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class Mention:
    """The module a text is about, and where the evidence was (a trace or the prose)."""

    module: Module
    in_trace: bool

    def describe(self) -> str:
        return f'{"trace points into" if self.in_trace else "names"} "{self.module.name}"'


def _alias_pattern(names: Iterable[str]) -> re.Pattern[str]:
    parts = []
    for name in names:
        words = [re.escape(w) for w in re.split(r"[\s_\-]+", name.strip()) if w]
        parts.append(r"[\s_\-]*".join(words))
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(parts) + r")(?![a-z0-9])", re.IGNORECASE)


@dataclass(frozen=True)
class Catalogue:
    modules: tuple[Module, ...]

    @classmethod
    def build(cls, ours: Iterable[str], third_party: Iterable[str], aliases: Mapping[str, Iterable[str]]) -> Catalogue:
        modules = [
            Module(name, ownership, _alias_pattern([name, *aliases.get(name, ())]))
            for names, ownership in ((ours, Ownership.OURS), (third_party, Ownership.THIRD_PARTY))
            for name in names
        ]
        return cls(tuple(modules))

    def decisive(self, text: str) -> Mention | None:
        """The module that decides: the first one an error trace points into, else a third-party
        module named anywhere (its trouble is billable), else one of ours named."""
        named: list[Module] = []
        for line in text.splitlines():
            found = [m for m in self.modules if m.pattern.search(line)]
            if not found:
                continue
            if _TRACE_LINE.search(line):
                return Mention(found[0], in_trace=True)
            named.extend(found)
        for ownership in (Ownership.THIRD_PARTY, Ownership.OURS):
            for module in named:
                if module.ownership is ownership:
                    return Mention(module, in_trace=False)
        return None
