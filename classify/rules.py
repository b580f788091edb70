"""Rules as data: an ordered TOML file of rules, loaded into `Rule` records and checked whole.

    [[rule]]
    name = "third-party-module"
    description = "Trouble caused by a module the client installed from elsewhere is billable."
    category = "billable"
    when = { sender = "client", module = "third_party" }

The first rule whose every condition holds decides. `category = "thread"` keeps the category the
thread already has. `minutes` is "estimate" (default) or a fixed number. A bad file is reported
with its name, the rule's line and the problem, and nothing from it is used.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from classify.conditions import KINDS, Condition, RuleSyntaxError
from classify.estimate import EstimateSettings
from ingest.errors import IngestError
from ledger.models import Category

DEFAULT_RULES = Path(__file__).with_name("default_rules.toml")
THREAD = "thread"
_RULE_KEYS = {"name", "description", "category", "when", "minutes", "link_project", "auto_approve"}


class RulesError(IngestError):
    """The rules file cannot be read or has a mistake; the message names the file and line."""


@dataclass(frozen=True)
class Rule:
    """One rule: conditions (all must hold) and the outcome.

    Attributes:
      category: what the rule decides, or None to keep the thread's category.
      fixed_minutes: minutes to propose whatever the evidence (None: estimate them).
      link_project: attach the proposal to the open project the text names.
      auto_approve: approve without review; honoured only for rules an admin listed in psp.toml.
    """

    name: str
    description: str
    conditions: tuple[tuple[str, Condition], ...]
    category: Category | None
    fixed_minutes: int | None
    link_project: bool
    auto_approve: bool
    line: int


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    estimate: EstimateSettings
    source: str


def _rule_lines(text: str) -> list[int]:
    return [n for n, line in enumerate(text.splitlines(), start=1) if re.match(r"\s*\[\[\s*rule\s*\]\]", line)]


def _build_rule(raw: Any, line: int) -> Rule:
    if not isinstance(raw, dict):
        raise RuleSyntaxError("a rule must be a table")
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise RuleSyntaxError(f"unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(_RULE_KEYS))})")
    name = raw.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
        raise RuleSyntaxError(f"name must be lower-case words joined by '-', got {name!r}")
    when = raw.get("when", {})
    if not isinstance(when, dict):
        raise RuleSyntaxError("when must be a table of conditions")
    conditions = []
    for kind, value in when.items():
        if kind not in KINDS:
            raise RuleSyntaxError(f"unknown condition {kind!r} (known: {', '.join(KINDS)})")
        conditions.append((kind, KINDS[kind](value)))
    category_text = raw.get("category")
    if category_text == THREAD:
        category = None
    else:
        try:
            category = Category(str(category_text))
        except ValueError:
            allowed = ", ".join([c.value for c in Category] + [THREAD])
            raise RuleSyntaxError(f"category must be one of {allowed}, got {category_text!r}") from None
    minutes = raw.get("minutes", "estimate")
    if minutes != "estimate" and (not isinstance(minutes, int) or isinstance(minutes, bool) or minutes < 0):
        raise RuleSyntaxError(f'minutes must be "estimate" or whole minutes, got {minutes!r}')
    flags = {}
    for flag in ("link_project", "auto_approve"):
        flags[flag] = raw.get(flag, False)
        if not isinstance(flags[flag], bool):
            raise RuleSyntaxError(f"{flag} must be true or false")
    return Rule(
        name=name,
        description=str(raw.get("description", "")),
        conditions=tuple(conditions),
        category=category,
        fixed_minutes=None if minutes == "estimate" else minutes,
        link_project=flags["link_project"],
        auto_approve=flags["auto_approve"],
        line=line,
    )


def _estimate_settings(raw: Any, source: str) -> EstimateSettings:
    if raw is None:
        return EstimateSettings()
    defaults = EstimateSettings()
    known = {"read_words_per_minute", "write_words_per_minute", "minutes_per_attachment", "base_minutes"}
    if not isinstance(raw, dict) or not set(raw) <= known:
        raise RulesError(f"{source}: [estimate] takes {', '.join(sorted(known))}")
    base = raw.get("base_minutes", dict(defaults.base_minutes))
    numbers = [raw.get(k, 1) for k in known - {"base_minutes"}] + list(base.values())
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in numbers):
        raise RulesError(f"{source}: [estimate] values must be whole numbers")
    return EstimateSettings(
        read_words_per_minute=raw.get("read_words_per_minute", defaults.read_words_per_minute) or 1,
        write_words_per_minute=raw.get("write_words_per_minute", defaults.write_words_per_minute) or 1,
        minutes_per_attachment=raw.get("minutes_per_attachment", defaults.minutes_per_attachment),
        base_minutes=MappingProxyType(dict(base)),
    )


def parse_rules(text: str, source: str) -> RuleSet:
    """Check and build every rule; the first mistake is an error naming file, line and rule."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{source}: {exc}") from exc
    unknown = set(raw) - {"rule", "estimate"}
    if unknown:
        raise RulesError(f"{source}: unknown section(s) {', '.join(sorted(unknown))}: use [[rule]] and [estimate]")
    tables = raw.get("rule", [])
    if not isinstance(tables, list) or not tables:
        raise RulesError(f"{source}: no rules: write each one as a [[rule]] table")
    lines = _rule_lines(text)
    rules: list[Rule] = []
    for index, table in enumerate(tables):
        line = lines[index] if index < len(lines) else 0
        label = table.get("name", f"#{index + 1}") if isinstance(table, dict) else f"#{index + 1}"
        try:
            rule = _build_rule(table, line)
        except RuleSyntaxError as exc:
            raise RulesError(f"{source}:{line}: rule {label!r}: {exc}") from None
        if any(r.name == rule.name for r in rules):
            raise RulesError(f"{source}:{line}: rule {rule.name!r} is defined twice")
        rules.append(rule)
    return RuleSet(tuple(rules), _estimate_settings(raw.get("estimate"), source), source)


def load_rules(path: Path | None) -> RuleSet:
    """The user's rules file when configured, else the default rules shipped with the product."""
    path = path or DEFAULT_RULES
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"cannot read rules file {path}: {exc.strerror}") from exc
    return parse_rules(text, str(path))
