"""Condition kinds a rule can use, each built from its value in the rules file.

A condition is a function of the item's facts that returns the evidence it found (a short text
for the explanation) or None when it does not hold. Every kind checks its value when the rules
are loaded, so a mistake is reported with the file and line before anything is classified.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from classify.estimate import count_words
from classify.facts import ItemFacts, Project
from classify.modules import Catalogue

Evidence = str | None


@dataclass(frozen=True)
class Context:
    """What conditions may consult beside the item: the module catalogue."""

    catalogue: Catalogue


Condition = Callable[[ItemFacts, Context], Evidence]


class RuleSyntaxError(ValueError):
    """A condition's value is not what its kind expects; the message says what would be."""


def _choice(value: Any, allowed: Sequence[str], kind: str) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or any(v not in allowed for v in values):
        raise RuleSyntaxError(f"{kind} must be one of {', '.join(allowed)} (or a list of them), got {value!r}")
    return values


def _strings(value: Any, kind: str) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
        raise RuleSyntaxError(f"{kind} must be a word or a list of words, got {value!r}")
    return values


def _flag(value: Any, kind: str) -> bool:
    if not isinstance(value, bool):
        raise RuleSyntaxError(f"{kind} must be true or false, got {value!r}")
    return value


def _scoped(facts: ItemFacts, scope: str) -> str:
    """`new`: the subject and the sender's own words; `message`: the subject and everything."""
    return f"{facts.subject}\n{facts.new_text if scope == 'new' else facts.text}"


def sender(value: Any) -> Condition:
    kinds = _choice(value, ("client", "unknown", "staff"), "sender")
    return lambda facts, _: f"sender is {facts.sender}" if facts.sender in kinds else None


def plan(value: Any) -> Condition:
    plans = _choice(value, ("psp", "none"), "plan")
    return lambda facts, _: f"plan {facts.plan}" if facts.plan in plans else None


def channel(value: Any) -> Condition:
    channels = _choice(value, ("email", "ticket", "phone", "skype", "onsite"), "channel")
    return lambda facts, _: f"by {facts.channel}" if facts.channel in channels else None


def folder(value: Any) -> Condition:
    folders = {f.lower() for f in _strings(value, "folder")}
    return lambda facts, _: f"in {facts.folder}" if facts.folder.lower() in folders else None


def header(value: Any) -> Condition:
    """`header = "List-Id"` (present) or `header = { name = "X-Priority", matches = "^1" }`."""
    if isinstance(value, str):
        name, pattern = value.lower(), None
    elif isinstance(value, dict) and isinstance(value.get("name"), str) and set(value) <= {"name", "matches"}:
        name, pattern = value["name"].lower(), _regex(value.get("matches", ".*"), "header.matches")
    else:
        raise RuleSyntaxError(f'header must be a name or {{ name = "…", matches = "…" }}, got {value!r}')

    def check(facts: ItemFacts, _: Context) -> Evidence:
        for found in facts.headers.get(name, ()):
            if pattern is None or pattern.search(found):
                return f"{name}: {found[:40]}"
        return None

    return check


def queue(value: Any) -> Condition:
    """The ticket is in one of these helpdesk queues (case-insensitive)."""
    queues = {q.lower() for q in _strings(value, "queue")}
    return lambda facts, _: f"queue {facts.queue}" if facts.queue and facts.queue.lower() in queues else None


def custom_field(value: Any) -> Condition:
    """`custom_field = "Severity"` (has a value) or `{ name = "Severity", matches = "^(high|urgent)$" }`."""
    if isinstance(value, str) and value:
        name, pattern = value.lower(), None
    elif isinstance(value, dict) and isinstance(value.get("name"), str) and set(value) <= {"name", "matches"}:
        name, pattern = value["name"].lower(), _regex(value.get("matches", ".*"), "custom_field.matches")
    else:
        raise RuleSyntaxError(f'custom_field must be a name or {{ name = "…", matches = "…" }}, got {value!r}')

    def check(facts: ItemFacts, _: Context) -> Evidence:
        for field_name, values in facts.custom_fields.items():
            if field_name.lower() != name:
                continue
            for found in values:
                if found and (pattern is None or pattern.search(found)):
                    return f"{field_name} = {found[:40]}"
        return None

    return check


def _regex(value: Any, kind: str) -> re.Pattern[str]:
    if not isinstance(value, str):
        raise RuleSyntaxError(f"{kind} must be a regular expression, got {value!r}")
    try:
        return re.compile(value, re.IGNORECASE)
    except re.error as exc:
        raise RuleSyntaxError(f"{kind} is not a valid regular expression: {exc}") from exc


def _word_pattern(words: list[str]) -> re.Pattern[str]:
    alternatives = "|".join(r"\s+".join(re.escape(part) for part in w.split()) for w in words)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def _text_test(value: Any, kind: str) -> tuple[list[str], str]:
    """`[words]` (new text) or `{ any = [words], in = "message" }`."""
    if isinstance(value, dict):
        if not set(value) <= {"any", "in"} or value.get("in", "new") not in ("new", "message"):
            raise RuleSyntaxError(f'{kind} table takes any = [words] and in = "new" | "message"')
        return _strings(value.get("any"), f"{kind}.any"), value.get("in", "new")
    return _strings(value, kind), "new"


def words(value: Any) -> Condition:
    """Any of the words or phrases, case-insensitive, on word boundaries."""
    found_words, scope = _text_test(value, "words")
    pattern = _word_pattern(found_words)

    def check(facts: ItemFacts, _: Context) -> Evidence:
        match = pattern.search(_scoped(facts, scope))
        return f'says "{match.group(0)}"' if match else None

    return check


def no_words(value: Any) -> Condition:
    """None of the words or phrases."""
    found_words, scope = _text_test(value, "no_words")
    pattern = _word_pattern(found_words)
    return lambda facts, _: None if pattern.search(_scoped(facts, scope)) else "none of the excluded words"


def regex(value: Any) -> Condition:
    """`regex = "pattern"` (new text) or `regex = { pattern = "…", in = "message" }`."""
    scope = "new"
    if isinstance(value, dict):
        if not set(value) <= {"pattern", "in"} or value.get("in", "new") not in ("new", "message"):
            raise RuleSyntaxError('regex table takes pattern = "…" and in = "new" | "message"')
        scope, value = value.get("in", "new"), value.get("pattern")
    pattern = _regex(value, "regex")

    def check(facts: ItemFacts, _: Context) -> Evidence:
        match = pattern.search(_scoped(facts, scope))
        return f'matches "{match.group(0)[:40]}"' if match else None

    return check


def module(value: Any) -> Condition:
    """The decisive module mention is ours / third-party / either (see `classify.modules`)."""
    wanted = _choice(value, ("ours", "third_party", "any"), "module")

    def check(facts: ItemFacts, context: Context) -> Evidence:
        mention = context.catalogue.decisive(f"{facts.subject}\n{facts.text}")
        if mention is None:
            return None
        if "any" in wanted or mention.module.ownership.value in wanted:
            return mention.describe()
        return None

    return check


def project(value: Any) -> Condition:
    """The text names one of the client's open projects (true), or names none (false)."""
    expected = _flag(value, "project")

    def check(facts: ItemFacts, _: Context) -> Evidence:
        named = mentioned_project(facts)
        if expected:
            return f'names project "{named.name}"' if named else None
        return None if named else "names no open project"

    return check


def mentioned_project(facts: ItemFacts) -> Project | None:
    """The first open project of the client whose name the subject or text contains."""
    haystack = f"{facts.subject}\n{facts.text}".lower()
    return next((p for p in facts.projects if p.name.lower() in haystack), None)


def thread(value: Any) -> Condition:
    """The item's thread already has a category (true) / has none yet (false)."""
    expected = _flag(value, "thread")

    def check(facts: ItemFacts, _: Context) -> Evidence:
        if expected:
            return f"thread is {facts.thread_category}" if facts.thread_category else None
        return None if facts.thread_category else "new thread"

    return check


def automated(value: Any) -> Condition:
    """The item is automated mail (true: the noise reason is the evidence) / is human (false)."""
    expected = _flag(value, "automated")

    def check(facts: ItemFacts, _: Context) -> Evidence:
        if expected:
            return facts.noise
        return None if facts.noise else "written by a person"

    return check


def attachments(value: Any) -> Condition:
    expected = _flag(value, "attachments")

    def check(facts: ItemFacts, _: Context) -> Evidence:
        if (facts.attachments > 0) != expected:
            return None
        return f"{facts.attachments} attachment(s)" if expected else "no attachments"

    return check


def max_words(value: Any) -> Condition:
    """The sender's own words are at most this many (a short note, not a request)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise RuleSyntaxError(f"max_words must be a whole number, got {value!r}")

    def check(facts: ItemFacts, _: Context) -> Evidence:
        count = count_words(facts.new_text)
        return f"{count} words" if count <= value else None

    return check


def question(value: Any) -> Condition:
    """The sender's own words ask something (a question mark) — true — or not — false."""
    expected = _flag(value, "question")

    def check(facts: ItemFacts, _: Context) -> Evidence:
        asks = "?" in facts.new_text or "？" in facts.new_text
        if asks != expected:
            return None
        return "asks a question" if asks else "asks nothing"

    return check


KINDS: dict[str, Callable[[Any], Condition]] = {
    "sender": sender,
    "plan": plan,
    "channel": channel,
    "folder": folder,
    "header": header,
    "queue": queue,
    "custom_field": custom_field,
    "words": words,
    "no_words": no_words,
    "regex": regex,
    "module": module,
    "project": project,
    "thread": thread,
    "automated": automated,
    "attachments": attachments,
    "max_words": max_words,
    "question": question,
}
