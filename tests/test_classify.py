"""The rules engine as pure functions: each condition kind, the estimator, rules files, decisions."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import pytest

from classify.conditions import KINDS, Context, RuleSyntaxError
from classify.engine import FALLBACK_RULE, classify
from classify.estimate import EstimateSettings, estimate
from classify.facts import ItemFacts, Project
from classify.modules import Catalogue
from classify.rules import DEFAULT_RULES, RulesError, load_rules, parse_rules
from ledger.models import Category
from psp.config import Policy

POLICY = Policy()
CATALOGUE = Catalogue.build(
    ours=["Easy Gift Wrap"],
    third_party=["One-Page Checkout"],
    aliases={"Easy Gift Wrap": ["EGW", "easy_gift_wrap"], "One-Page Checkout": ["OPC", "checkout_one"]},
)
CONTEXT = Context(CATALOGUE)


def check(kind: str, value: object, facts: ItemFacts) -> str | None:
    return KINDS[kind](value)(facts, CONTEXT)


@pytest.mark.parametrize(
    ("kind", "value", "facts", "evidence"),
    [
        ("sender", "client", ItemFacts(sender="client"), "sender is client"),
        ("sender", ["staff", "unknown"], ItemFacts(sender="client"), None),
        ("plan", "none", ItemFacts(plan="none"), "plan none"),
        ("plan", "psp", ItemFacts(plan=None), None),
        ("channel", ["phone", "skype"], ItemFacts(channel="skype"), "by skype"),
        ("folder", "sent", ItemFacts(folder="Sent"), "in Sent"),
        ("folder", "INBOX", ItemFacts(folder="Support queue"), None),
        (
            "header",
            "List-Id",
            ItemFacts(headers=MappingProxyType({"list-id": ("<news.example>",)})),
            "list-id: <news.example>",
        ),
        (
            "header",
            {"name": "X-Priority", "matches": "^1"},
            ItemFacts(headers=MappingProxyType({"x-priority": ("3",)})),
            None,
        ),
        ("queue", ["Support", "Billing"], ItemFacts(channel="ticket", queue="support"), "queue support"),
        ("queue", "Support", ItemFacts(queue="Sales"), None),
        (
            "custom_field",
            {"name": "severity", "matches": "^(high|urgent)$"},
            ItemFacts(custom_fields=MappingProxyType({"Severity": ("High",)})),
            "Severity = High",
        ),
        ("custom_field", "Severity", ItemFacts(custom_fields=MappingProxyType({"Severity": ("",)})), None),
        ("words", ["not working"], ItemFacts(new_text="It is NOT\nworking at all"), 'says "NOT\nworking"'),
        ("words", ["bug"], ItemFacts(new_text="debugging is fun"), None),  # word boundaries
        ("words", {"any": ["bug"], "in": "message"}, ItemFacts(new_text="Hi", text="Hi\n> it is a bug"), 'says "bug"'),
        ("words", ["bug"], ItemFacts(new_text="Hi", text="Hi\n> it is a bug"), None),  # quotes are not new text
        ("words", ["urgent"], ItemFacts(subject="URGENT: down"), 'says "URGENT"'),
        ("no_words", ["price"], ItemFacts(new_text="the checkout fails"), "none of the excluded words"),
        ("no_words", ["price"], ItemFacts(new_text="what is the price"), None),
        ("regex", r"order #\d+", ItemFacts(new_text="see Order #1234"), 'matches "Order #1234"'),
        ("regex", {"pattern": r"fatal", "in": "message"}, ItemFacts(text="PHP Fatal error"), 'matches "Fatal"'),
        (
            "module",
            "third_party",
            ItemFacts(text="After installing OPC the page is blank"),
            'names "One-Page Checkout"',
        ),
        ("module", "ours", ItemFacts(text="After installing OPC the page is blank"), None),
        ("module", "any", ItemFacts(text="nothing about modules"), None),
        (
            "project",
            True,
            ItemFacts(text="About the B2B portal spec", projects=(Project(7, "B2B portal"),)),
            'names project "B2B portal"',
        ),
        ("project", False, ItemFacts(text="A question", projects=(Project(7, "B2B portal"),)), "names no open project"),
        ("thread", True, ItemFacts(thread_category="billable"), "thread is billable"),
        ("thread", False, ItemFacts(thread_category="billable"), None),
        ("automated", True, ItemFacts(noise="Auto-Submitted: auto-replied"), "Auto-Submitted: auto-replied"),
        ("automated", False, ItemFacts(noise=None), "written by a person"),
        ("attachments", True, ItemFacts(attachments=2), "2 attachment(s)"),
        ("attachments", True, ItemFacts(attachments=0), None),
        ("max_words", 5, ItemFacts(new_text="Thanks, all good now!"), "4 words"),
        ("max_words", 3, ItemFacts(new_text="Thanks, all good now!"), None),
        ("question", True, ItemFacts(new_text="Can you look?"), "asks a question"),
        ("question", False, ItemFacts(new_text="Can you look?"), None),
    ],
)
def test_condition_kinds(kind: str, value: object, facts: ItemFacts, evidence: str | None) -> None:
    assert check(kind, value, facts) == evidence


def test_every_condition_kind_is_tested() -> None:
    tested = {
        "sender",
        "plan",
        "channel",
        "folder",
        "header",
        "queue",
        "custom_field",
        "words",
        "no_words",
        "regex",
        "module",
        "project",
        "thread",
        "automated",
        "attachments",
        "max_words",
        "question",
    }
    assert set(KINDS) == tested


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("sender", "boss", "sender must be one of client, unknown, staff"),
        ("regex", "(", "not a valid regular expression"),
        ("words", [], "must be a word or a list of words"),
        ("header", {"nme": "X"}, "header must be a name or"),
        ("max_words", -1, "max_words must be a whole number"),
        ("thread", "yes", "thread must be true or false"),
    ],
)
def test_bad_condition_values_are_refused(kind: str, value: object, message: str) -> None:
    with pytest.raises(RuleSyntaxError, match=message):
        KINDS[kind](value)


def test_a_trace_decides_over_the_prose() -> None:
    blamed_ours_trace_third_party = (
        "Your EGW module broke the checkout!\n"
        "PHP Warning: Undefined index in /var/www/includes/modules/pages/checkout_one/header_php.php on line 88\n"
    )
    mention = CATALOGUE.decisive(blamed_ours_trace_third_party)
    assert mention is not None
    assert (mention.module.name, mention.in_trace) == ("One-Page Checkout", True)
    prose_only = "We use OPC and your Easy Gift Wrap; the gift option is gone."
    named = CATALOGUE.decisive(prose_only)
    assert named is not None
    assert (named.module.name, named.in_trace) == ("One-Page Checkout", False)


def test_estimate_from_the_evidence_then_the_generous_rule() -> None:
    guess = estimate(
        channel="email",
        new_text="word " * 420,
        attachments=0,
        reply_words=310,
        given_minutes=None,
        billable=True,
        policy=POLICY,
        settings=EstimateSettings(),
    )
    assert (guess.contact_minutes, guess.minutes) == (18, 10)
    assert guess.reason == "contact 18 min (read 420 words 2 + reply 310 words 8 + base 8) × 0.75 → 10 min"


def test_recorded_minutes_are_taken_as_given() -> None:
    guess = estimate(
        channel="ticket",
        new_text="long text " * 500,
        attachments=3,
        reply_words=0,
        given_minutes=40,
        billable=True,
        policy=POLICY,
        settings=EstimateSettings(),
    )
    assert (guess.contact_minutes, guess.minutes, guess.reason) == (
        40,
        30,
        "contact 40 min (recorded 40) × 0.75 → 30 min",
    )


def test_attachments_and_channel_base_count() -> None:
    guess = estimate(
        channel="ticket",
        new_text="short",
        attachments=2,
        reply_words=0,
        given_minutes=None,
        billable=False,
        policy=POLICY,
        settings=EstimateSettings(),
    )
    assert guess.contact_minutes == 1 + 4 + 5


RULES = """\
[[rule]]
name = "third-party-module"
category = "billable"
when = { sender = "client", module = "third_party" }

[[rule]]
name = "our-module"
category = "module-bug"
when = { module = "ours" }

[[rule]]
name = "keep-thread"
category = "thread"
when = { thread = true }

[[rule]]
name = "fixed-call"
category = "billable"
minutes = 15
when = { channel = "phone" }

[[rule]]
name = "prep"
category = "project-prep"
link_project = true
auto_approve = true
when = { project = true }
"""


def test_the_first_matching_rule_decides_and_explains() -> None:
    rules = parse_rules(RULES, "t.toml")
    facts = ItemFacts(sender="client", new_text="word " * 420, text="The One-Page Checkout is blank")
    decision = classify(facts, rules, CONTEXT, POLICY, reply_words=310)
    assert (decision.category, decision.minutes, decision.contact_minutes, decision.rule) == (
        Category.BILLABLE,
        10,
        18,
        "third-party-module",
    )
    assert decision.explanation == (
        'rule third-party-module: sender is client; names "One-Page Checkout"; '
        "contact 18 min (read 420 words 2 + reply 310 words 8 + base 8) × 0.75 → 10 min"
    )


def test_thread_category_fixed_minutes_project_link_and_fallback() -> None:
    rules = parse_rules(RULES, "t.toml")
    reply = classify(ItemFacts(sender="client", thread_category="pre-sales"), rules, CONTEXT, POLICY)
    assert (reply.category, reply.rule) == (Category.PRE_SALES, "keep-thread")
    call = classify(ItemFacts(channel="phone", sender="client"), rules, CONTEXT, POLICY)
    assert (call.minutes, call.explanation) == (15, "rule fixed-call: by phone; 15 min fixed by the rule")
    prep = classify(
        ItemFacts(sender="client", text="Portal spec v2", projects=(Project(3, "Portal"),)), rules, CONTEXT, POLICY
    )
    assert (prep.category, prep.project_id, prep.auto_approve) == (Category.PROJECT_PREP, 3, False)
    allowed = classify(
        ItemFacts(sender="client", text="Portal spec v2", projects=(Project(3, "Portal"),)),
        rules,
        CONTEXT,
        POLICY,
        auto_approvable=frozenset({"prep"}),
    )
    assert allowed.auto_approve is True
    stranger = classify(ItemFacts(sender="unknown", text="hello"), rules, CONTEXT, POLICY)
    assert (stranger.category, stranger.rule) == (Category.PRE_SALES, FALLBACK_RULE)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[rule]]\nname = "a"\ncategory = "billable"\n\n[[rule]]\nname = "b"\ncategory = "free"\n',
            "t.toml:5: rule 'b': category must be one of",
        ),
        (
            '[[rule]]\nname = "a"\ncategory = "billable"\nwhen = { colour = "red" }\n',
            "t.toml:1: rule 'a': unknown condition 'colour'",
        ),
        ('[[rule]]\nname = "A b"\ncategory = "billable"\n', "name must be lower-case words"),
        ('[[rule]]\nname = "a"\ncategory = "billable"\n[[rule]]\nname = "a"\ncategory = "billable"\n', "defined twice"),
        ('[[rule]]\nname = "a"\ncategory = "billable"\nminutes = -5\n', 'minutes must be "estimate" or whole minutes'),
        ("[[rule]\n", "t.toml: "),
        ("[rules]\nx = 1\n", "unknown section"),
        ("", "no rules"),
    ],
)
def test_a_bad_rules_file_names_file_line_and_problem(text: str, message: str) -> None:
    with pytest.raises(RulesError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse_rules(text, "t.toml")


def test_the_default_rules_load_and_are_documented() -> None:
    rules = load_rules(None)
    assert rules.source == str(DEFAULT_RULES)
    assert [r.name for r in rules.rules][:2] == ["automated", "spam"]
    assert all(r.description for r in rules.rules)
    assert not any(r.auto_approve for r in rules.rules)


def test_a_missing_rules_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read rules file"):
        load_rules(tmp_path / "absent.toml")
