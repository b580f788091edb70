"""The module catalogue: which module a message is about, and whether it is ours.

A module is named in prose ("the gift wrap module") or shows up in an error trace
(`includes/modules/easy_gift_wrap/...`). A trace is the stronger evidence: when a client blames
our module but the PHP warning points into a third-party one, the trace decides.
"""

from __future__ import annotations

import functools
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


@dataclass(frozen=True)
class Mention:
    """The module a text is about, and where the evidence was (a trace or the prose)."""

    module: Module
    in_trace: bool

    def describe(self) -> str:
        return f'{"trace points into" if self.in_trace else "names"} "{self.module.name}"'


def _alias_pattern(names: Iterable[str]) -> str:
    """Any of the names, spaces, '_' and '-' interchangeable ("Easy Gift Wrap" ~ easy_gift_wrap)."""
    parts = []
    for name in names:
        words = [re.escape(w) for w in re.split(r"[\s_\-]+", name.strip()) if w]
        parts.append(r"[\s_\-]*".join(words))
    return "|".join(parts)


@dataclass(frozen=True)
class Catalogue:
    """The modules, with one compiled pattern that finds any of them in a single pass."""

    modules: tuple[Module, ...]
    pattern: re.Pattern[str] | None

    @classmethod
    def build(cls, ours: Iterable[str], third_party: Iterable[str], aliases: Mapping[str, Iterable[str]]) -> Catalogue:
        modules = [
            Module(name, ownership)
            for names, ownership in ((ours, Ownership.OURS), (third_party, Ownership.THIRD_PARTY))
            for name in names
        ]
        if not modules:
            return cls((), None)
        groups = "|".join(
            f"(?P<m{i}>{_alias_pattern([m.name, *aliases.get(m.name, ())])})" for i, m in enumerate(modules)
        )
        return cls(tuple(modules), re.compile(rf"(?<![a-z0-9])(?:{groups})(?![a-z0-9])", re.IGNORECASE))

    def decisive(self, text: str) -> Mention | None:
        """The module that decides: the first one an error trace points into, else a third-party
        module named anywhere (its trouble is billable), else one of ours named."""
        return _decisive(self, text)


@functools.lru_cache(maxsize=64)  # several rules ask about the same message in a row
def _decisive(catalogue: Catalogue, text: str) -> Mention | None:
    if catalogue.pattern is None:
        return None
    named: list[Module] = []
    for match in catalogue.pattern.finditer(text):
        module = catalogue.modules[int((match.lastgroup or "m0")[1:])]
        start = text.rfind("\n", 0, match.start()) + 1
        end = text.find("\n", match.end())
        if _TRACE_LINE.search(text, start, end if end >= 0 else len(text)):
            return Mention(module, in_trace=True)
        named.append(module)
    for ownership in (Ownership.THIRD_PARTY, Ownership.OURS):
        for module in named:
            if module.ownership is ownership:
                return Mention(module, in_trace=False)
    return None
