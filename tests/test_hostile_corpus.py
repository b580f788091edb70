"""The shared hostile corpus: every file parses or is refused with a reason, and its manifest holds.

The corpus lives beside the clone (`../shared/corpus/hostile`, read in place, never copied: see its
README and MANIFEST.tsv). Without it these tests are skipped with the path they looked for.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pytest

from ingest.errors import NotAnEmail
from ingest.noise import noise_reason
from ingest.parsing import ParsedEmail, parse_message
from ingest.quoting import new_text

HOSTILE = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "hostile"

pytestmark = pytest.mark.skipif(not HOSTILE.is_dir(), reason=f"the shared hostile corpus is not at {HOSTILE}")


def _manifest() -> dict[str, dict[str, str]]:
    if not HOSTILE.is_dir():
        return {}
    with (HOSTILE / "MANIFEST.tsv").open(encoding="utf-8", newline="") as handle:
        return {row["file"]: row for row in csv.DictReader(handle, delimiter="\t")}


MANIFEST = _manifest()


def _files(kind: str) -> list[str]:
    """Manifest files whose expected_handling starts with `kind`."""
    return sorted(name for name, row in MANIFEST.items() if row["expected_handling"].startswith(kind))


NOT_MAIL = _files("not RFC 5322 mail")
AUTOMATED = _files("AUTOMATED")
BULK = _files("bulk/list/junk")
NORMAL = _files("parse without crash; normal pipeline")
BODY_ONLY = _files("body-only reply-parsing fixture")

# "Normal pipeline" files that nevertheless carry a header our noise rules act on, and why that is right.
NOISY_NORMAL = {
    "mailparser__test_6.eml": "List-Id",  # phishing-style bulk mail sent with a List-Id header: list mail
}

# The same message in two copies: byte-identical, or differing only in line endings.
SAME_MESSAGE = [
    ("rubymail__multi_address_bounce1.eml", "rubymail__multi_address_bounce2.eml"),
    ("sisimai__bounce-postfix-crlf.eml", "sisimai__bounce-postfix-lf.eml"),
    ("sisimai__bounce-exim-cr-only.eml", "sisimai__bounce-exim-lf.eml"),
]

# What the writer added in each body-only reply-parser fixture, read off the files by hand.
NEW_TEXT = {
    "mpreply__dutch.txt": "Outlook met een antwoord",
    "mpreply__external-caution-banner.txt": (
        "Hi lads's Team,\n\n"
        'Below THIS and THAT file for 31st August 2019 is still not available  on "lads.lads.com" could you please '
        "check and advise us ASAP.\n\n"
        "pfg.Zip\npfg02.Zip\n\n"
        "part01_07.Zip\n_part02_07.Zip\n_part03_07.Zip\n_part04_07.Zip\n_part05_07.Zip\n_part06_07.Zip\n_part07_07.Zip\n\n"
        "job at our end.\n\n"
        "Thanks,"
    ),
    "mpreply__german_forward.txt": "First reply.\n\nThis is fairly common; nothing too hard here!",
    "mpreply__multiline_on_de.txt": "Am heutigen Tage",
    "replyparser__greedy_on.txt": (
        "On your remote host you can run:\n\n     telnet 127.0.0.1 52698\n\n"
        "This should connect to TextMate (on your Mac, via the tunnel). If that\nfails, the tunnel is not working."
    ),
    "replyparser__headers_no_delimiter.txt": "And another reply!",
    "replyparser__pathological.txt": (
        "I think you're onto something. I will try to fix the problem as soon as I\nget back to a computer."
    ),
}

_cache: dict[str, ParsedEmail] = {}


def parsed(name: str) -> ParsedEmail:
    """Parse a corpus file once per session (the 1.8 MB torture test is worth not repeating)."""
    if name not in _cache:
        _cache[name] = parse_message((HOSTILE / name).read_bytes())
    return _cache[name]


def test_the_manifest_and_the_folder_agree() -> None:
    on_disk = {path.name for path in HOSTILE.iterdir() if path.is_file() and path.name != "MANIFEST.tsv"}
    assert on_disk == set(MANIFEST)
    assert len(MANIFEST) == len(NOT_MAIL) + len(AUTOMATED) + len(BULK) + len(NORMAL) + len(BODY_ONLY)


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_parsing_never_crashes(name: str) -> None:
    """Each file is stored (parses) or quarantined (NotAnEmail with a reason); nothing else escapes."""
    try:
        result: ParsedEmail | NotAnEmail = parsed(name)
    except NotAnEmail as exc:
        result = exc
    if isinstance(result, NotAnEmail):
        assert str(result)
    else:
        assert result.size == (HOSTILE / name).stat().st_size
        assert result.message_id
        assert len(result.content_hash) == 64


def _listed_defects(row: dict[str, str]) -> set[str]:
    """The email package's defects the manifest names ("py-defects:CloseBoundaryNotFound+…")."""
    for trait in row["auto_traits"].split(";"):
        kind, _, names = trait.strip().partition(":")
        if kind == "py-defects":
            return {f"{name}Defect" for name in names.split("+")}
    return set()


WITH_DEFECTS = sorted(name for name, row in MANIFEST.items() if _listed_defects(row) and name not in NOT_MAIL)


@pytest.mark.parametrize("name", WITH_DEFECTS)
def test_the_mime_defects_the_manifest_names_are_reported(name: str) -> None:
    assert _listed_defects(MANIFEST[name]) <= set(parsed(name).defects)


@pytest.mark.parametrize("name", NOT_MAIL)
def test_not_mail_is_refused_with_a_reason(name: str) -> None:
    with pytest.raises(NotAnEmail, match=r"\w{8,}"):
        parse_message((HOSTILE / name).read_bytes())


@pytest.mark.parametrize("name", BODY_ONLY)
def test_a_body_without_headers_is_not_a_message(name: str) -> None:
    with pytest.raises(NotAnEmail):
        parse_message((HOSTILE / name).read_bytes())


@pytest.mark.parametrize("name", AUTOMATED + BULK + NORMAL)
def test_real_mail_is_stored(name: str) -> None:
    assert isinstance(parsed(name), ParsedEmail)


@pytest.mark.parametrize("name", AUTOMATED)
def test_automated_mail_gets_a_noise_reason(name: str) -> None:
    assert noise_reason(parsed(name)) is not None


@pytest.mark.parametrize("name", BULK)
def test_bulk_list_and_junk_mail_gets_a_noise_reason(name: str) -> None:
    reason = noise_reason(parsed(name))
    assert reason is not None
    assert reason.startswith(("Precedence: ", "List-Id: ", "List-Unsubscribe: "))


@pytest.mark.parametrize("name", NORMAL)
def test_normal_mail_gets_no_noise_reason(name: str) -> None:
    reason = noise_reason(parsed(name))
    if name in NOISY_NORMAL:
        assert reason is not None
        assert reason.startswith(NOISY_NORMAL[name])
    else:
        assert reason is None


def test_different_messages_sharing_a_message_id_get_different_hashes() -> None:
    by_id: dict[str, list[str]] = defaultdict(list)
    for name in AUTOMATED + BULK + NORMAL:
        if not parsed(name).message_id_synthetic:
            by_id[parsed(name).message_id].append(name)
    shared = {message_id: names for message_id, names in by_id.items() if len(names) > 1}
    assert len(shared["07B7061D-2676-487E-942E-C341CE4D13DC@makita.skynet"]) == 8

    same = {frozenset(pair) for pair in SAME_MESSAGE}
    for names in shared.values():
        hashes: dict[str, str] = {}
        for name in names:
            hashes.setdefault(parsed(name).content_hash, name)
        copies = sum(1 for pair in same if pair <= set(names))
        assert len(hashes) == len(names) - copies, names


@pytest.mark.parametrize(("first", "second"), SAME_MESSAGE)
def test_copies_of_one_message_get_one_hash(first: str, second: str) -> None:
    assert parsed(first).message_id == parsed(second).message_id
    assert parsed(first).content_hash == parsed(second).content_hash


@pytest.mark.parametrize("name", BODY_ONLY)
def test_reply_fixtures_give_only_the_new_text(name: str) -> None:
    assert new_text((HOSTILE / name).read_text(encoding="utf-8")) == NEW_TEXT[name]


OBSOLETE_SUBJECT = "The obsolete syntax allow spaces before the colon and also empty lines in folding."


@pytest.mark.parametrize(
    ("name", "field", "expected"),
    [
        ("flanker__encoded-comma-in-from.eml", "sender_name", "Foo, Bar"),
        ("flanker__encoded-comma-in-from.eml", "sender", "foo.bar@example.com"),
        ("mailparser__test_18.eml", "sender", "comma.name@example.com"),
        ("mailparser__test_19.eml", "sender", "bob@example.com"),
        ("enmime__malformed-multi-address-from.eml", "sender", None),
        ("enmime__bad-header-start.eml", "sender", None),
        ("mime4j__obsolete-syntax.eml", "subject", OBSOLETE_SUBJECT),
        ("zbateson__truncated-boundary.eml", "message_id", "12223"),
        ("rubymail__double_at_message_id.eml", "message_id", "d3b8cf8e49f0448085@0c28713a1@f473e@37signals.com"),
        ("cpython__msg_48.eml", "in_reply_to", ("somelonglonglonglonglongunwrappablemessageidtoreplyto@mail.foo.bar",)),
        ("rubymail__bad_encoded_subject.eml", "subject", "TEST"),
        ("talon__reply-gmail.eml", "new_text", "Hello"),
        ("talon__reply-iphone.eml", "new_text", "Hello"),
        ("talon__reply-outlook.eml", "new_text", "Hello"),
        ("talon__reply-yahoo.eml", "new_text", "Hello"),
        ("sisimai__not-bounce-forward-attachment.eml", "new_text", "it shouldn't be considered as bounce"),
    ],
)  # fmt: skip
def test_what_is_odd_is_handled(name: str, field: str, expected: object) -> None:
    assert getattr(parsed(name), field) == expected


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("cpython__msg_47.eml", "unparseable"),  # hour 27
        ("rubymail__bad_date_localized.eml", "unparseable"),
        ("rubymail__bad_time_year_3609.eml", "implausible"),
        ("mime4j__obsolete-syntax.eml", "unparseable"),
        ("cpython__msg_15.eml", "no Date header"),
    ],
)
def test_bad_dates_are_none_with_the_problem(name: str, problem: str) -> None:
    result = parsed(name)
    assert result.date is None
    assert result.date_problem is not None
    assert result.date_problem.startswith(problem)


def test_the_long_header_is_one_decoded_line() -> None:
    result = parsed("flanker__long-header-200k.eml")
    assert len(result.subject) > 100_000
    assert "\n" not in result.subject
    assert "=?" not in result.subject
