"""Split the text a person just wrote from the quoted history and the signature below it.

Classification and time estimates must look at what the client wrote *now*: a reply that quotes a
three-page thread is still a two-line message. `new_text` works line by line and recognises:

- quoted lines (first non-blank character `>`);
- attributions ("On … wrote:", "Le … a écrit :", "Am … schrieb …:", "Op … schreef …:",
  "El … escribió:", "Den … skrev …:"), also when the client wrapped them over up to four lines;
- Outlook-style header blocks ("From: … Sent: …", "Von: … Gesendet: …", "Van: … Verzonden: …",
  "De : … Envoyé : …", "De: … Enviado: …", "Från: … Skickat: …", with or without `*bold*` keys);
- separators ("-----Original Message-----", "---------- Forwarded message ---------",
  "Begin forwarded message:", their translations, and a rule of ten or more underscores);
- the signature ("-- " line) and mobile footers ("Sent from my iPhone", "Von meinem iPhone gesendet", …);
- an "external sender" banner a mail gateway puts above the text.

Top-posting, bottom-posting and inline answers: an attribution followed by quoted lines is skipped,
together with its quotes, and the unquoted lines after the quotes are kept as answers, unless they are
followed by more history (another attribution, a header block, a separator) rather than by more quotes,
a signature or the end: then they are old text that lost its quote marks, and the new text ends at the
attribution. So "Hi Jane,\n\nOn … wrote:\n> question\n\nanswer\n\n-- \nBen" keeps the greeting and the
answer, while a top-posted reply keeps only what is above the attribution. Header blocks, separators
and signatures always end the new text.

Safety: no pattern is applied to more than the first `_PROBE` characters of a line and no pattern has
nested repetition, so the work is linear in the size of the text (a 1 MB line costs one scan).
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

# Only the start of a line is inspected by the patterns below.
_PROBE = 400
# A line longer than this is never part of an attribution or a header block.
_MAX_MARKER_LINE = 300
# An attribution may be wrapped over this many lines.
_ATTRIBUTION_LINES = 4
# A header block's "From:" line must be followed by another header key within this many lines.
_HEADER_BLOCK_LOOKAHEAD = 4

# Attribution lead word -> the verb that must follow it, per language.
_ATTRIBUTION_VERBS: dict[str, re.Pattern[str]] = {
    "On": re.compile(r"\bwrote\b"),
    "Le": re.compile(r"\ba [ée]crit\b"),
    "Am": re.compile(r"\bschrieb\b"),
    "Op": re.compile(r"\bschreef\b"),
    "El": re.compile(r"\bescribi[óo]\b"),
    "Den": re.compile(r"\bskrev\b"),
}
# "Jane Doe wrote:" on its own line, accepted only when quoted lines follow.
_BARE_ATTRIBUTION = re.compile(r"(?:\bwrote|\ba [ée]crit|\bschrieb|\bschreef|\bescribi[óo]|\bskrev)\s?:$")
_DIGIT = re.compile(r"\d")

_FROM_KEY = re.compile(r"\*{0,2}(?:from|von|van|de|fr[åa]n|fra|da|od)\*{0,2}\s{0,3}:", re.IGNORECASE)
_OTHER_KEY = re.compile(
    r"\*{0,2}(?:sent|date|to|cc|subject|gesendet|datum|an|betreff|verzonden|aan|onderwerp|envoy[ée]|[àa]|objet"
    r"|enviado|para|asunto|fecha|skickat|till|[äa]mne)\*{0,2}\s{0,3}:",
    re.IGNORECASE,
)

# Separator phrases, compared after stripping the surrounding dashes, underscores, '=' and '*'.
_SEPARATOR_PHRASES = frozenset(
    {
        "original message",
        "forwarded message",
        "message d'origine",
        "message d’origine",
        "message transféré",
        "ursprüngliche nachricht",
        "weitergeleitete nachricht",
        "oorspronkelijk bericht",
        "doorgestuurd bericht",
        "mensaje original",
        "mensaje reenviado",
        "ursprungligt meddelande",
        "vidarebefordrat meddelande",
    }
)
# Lines that introduce a forwarded message without dashes (Apple Mail and friends).
_FORWARD_INTROS = frozenset(
    {
        "begin forwarded message",
        "anfang der weitergeleiteten nachricht",
        "début du message réexpédié",
        "début du message transféré",
        "inicio del mensaje reenviado",
        "doorgestuurd bericht",
        "vidarebefordrat meddelande",
    }
)
_SEPARATOR_CHARS = "-_=* \t"

_MOBILE_FOOTER = re.compile(
    r"(?:sent from my |sent from (?:yahoo )?mail for |sent from outlook|get outlook for |envoyé de mon "
    r"|envoyé depuis mon |von meinem \S{1,40} gesendet|gesendet von meinem |verzonden vanaf mijn "
    r"|verstuurd vanaf mijn |enviado desde mi |skickat från min )",
    re.IGNORECASE,
)
# A banner opens with a warning word and says the mail came from outside; "Warning: the shop is down
# outside business hours" is the client's own text and must stay.
_BANNER = re.compile(
    r"\[?(?:external|caution|warning|attention|notice)\b.{0,100}?(?:originated (?:from )?outside"
    r"|from outside (?:of )?(?:the|this|your|our) (?:organi[sz]ation|company|network)|external (?:e-?mail|sender))",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class _Marker:
    """A recognised line range.

    kind: "quote" for an attribution followed by quoted lines, "history" for the start of old text
    (header block, separator, attribution over unquoted text), "end" for a signature or mobile footer.
    """

    start: int
    end: int
    kind: Literal["quote", "history", "end"]


def new_text(text: str) -> str:
    """Return what the writer added in this message: no quoted history, no signature.

    Never returns an empty string for a non-blank input: when everything is history (a bare forward, a
    message that is only a quote), the original text is returned, because that is the best evidence
    of what the message is about.
    """
    if not text.strip():
        return text
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept = _scan(lines, _skip_banner(lines))
    result = "\n".join(_trim(kept))
    return result if result.strip() else text


def _scan(lines: Sequence[str], start: int) -> list[str]:
    """Collect the new lines from `start`, applying the quoting rules of the module docstring."""
    kept: list[str] = []
    have_text = False
    index = start
    while index < len(lines):
        line = lines[index]
        marker = _marker_at(lines, index)
        if marker is not None:
            if marker.kind != "quote" or (have_text and not _answers_follow(lines, marker.end)):
                break
            index = marker.end
            continue
        if not _is_quote(line):
            kept.append(line)
            have_text = have_text or bool(line.strip())
        index += 1
    return kept


def _answers_follow(lines: Sequence[str], index: int) -> bool:
    """After an attribution's quoted lines: are the unquoted lines that follow answers (they end in
    more quotes, a signature or the end of the text) rather than old text (they end in more history)?"""
    while index < len(lines) and (_is_quote(lines[index]) or not lines[index].strip()):
        index += 1
    text_seen = False
    while index < len(lines):
        if _is_quote(lines[index]):
            return True
        marker = _marker_at(lines, index)
        if marker is not None:
            return not text_seen or marker.kind != "history"
        text_seen = text_seen or bool(lines[index].strip())
        index += 1
    return True


def _marker_at(lines: Sequence[str], index: int) -> _Marker | None:
    """The marker that starts at line `index`, if any."""
    probe = lines[index][:_PROBE].strip()
    if not probe or _is_quote(probe):
        return None
    if _is_signature(probe):
        return _Marker(index, index + 1, "end")
    if _is_separator(probe) or _is_underscore_rule(probe) or _is_header_block(lines, index):
        return _Marker(index, index + 1, "history")
    end = _attribution_end(lines, index)
    if end is not None:
        return _Marker(index, end, "quote" if _quote_follows(lines, end) else "history")
    return None


def _is_quote(line: str) -> bool:
    return line[:_PROBE].lstrip().startswith(">")


def _is_signature(probe: str) -> bool:
    """The "-- " delimiter (often stripped to "--") or a mobile client's footer."""
    return probe == "--" or _MOBILE_FOOTER.match(probe) is not None


def _is_separator(probe: str) -> bool:
    if probe[0] not in _SEPARATOR_CHARS and probe[-1] != ":":
        return False  # separators are decorated with dashes or end with a colon
    core = probe.strip(_SEPARATOR_CHARS).rstrip(":").strip().lower()
    if not core:
        return False
    if core in _FORWARD_INTROS:
        return True
    decorated = probe[:2] in ("--", "__", "==", "*-", "-*")
    return decorated and (core in _SEPARATOR_PHRASES or core.startswith("forwarded by "))


def _is_underscore_rule(probe: str) -> bool:
    """Outlook puts a rule of underscores above the quoted header block; signatures and disclaimers
    use the same rule. Ten or more underscores and nothing else."""
    return len(probe) >= 10 and not probe.strip("_")


def _is_header_block(lines: Sequence[str], index: int) -> bool:
    """A "From:" line followed closely by another header key ("Sent:", "Gesendet:", "To:" …)."""
    line = lines[index]
    if len(line) > _MAX_MARKER_LINE or ":" not in line or _FROM_KEY.match(line.strip()) is None:
        return False
    for following in lines[index + 1 : index + 1 + _HEADER_BLOCK_LOOKAHEAD]:
        probe = following[:_PROBE].strip()
        if _OTHER_KEY.match(probe) is not None:
            return True
    return False


def _attribution_end(lines: Sequence[str], index: int) -> int | None:
    """If an attribution starts at `index`, the index of the line after it.

    The attribution's last line ends with ':'. Looking for the nearest start above each candidate end
    means that in "Am heutigen Tage\\nAm So., 1. Jan. … schrieb X <\\nx@y>:" the attribution starts at
    the second line, not the first.
    """
    first = lines[index]
    if len(first) > _MAX_MARKER_LINE:
        return None
    stripped = first.strip()
    verb = _ATTRIBUTION_VERBS.get(stripped.split(" ", 1)[0])
    if verb is None:  # only "Jane Doe wrote:" on one line is possible
        bare = stripped.endswith(":") and _BARE_ATTRIBUTION.search(stripped) and _quote_follows(lines, index + 1)
        return index + 1 if bare else None
    for end in range(index, min(index + _ATTRIBUTION_LINES, len(lines))):
        line = lines[end].strip()
        if not line or len(line) > _MAX_MARKER_LINE or (end > index and _is_quote(line)):
            return None
        if not line.endswith(":"):
            continue
        if end > index and _starts_attribution(lines, index + 1, end):
            return None  # a later line starts the real attribution; it will be found from there
        window = " ".join(part.strip() for part in lines[index : end + 1])
        if verb.search(window) and _DIGIT.search(window):
            return end + 1
        if end == index and _BARE_ATTRIBUTION.search(window) and _quote_follows(lines, end + 1):
            return end + 1
    return None


def _starts_attribution(lines: Sequence[str], first: int, last: int) -> bool:
    """True when one of lines[first..last] opens an attribution that ends on line `last`."""
    for start in range(first, last + 1):
        lead = lines[start].strip().split(" ", 1)[0]
        verb = _ATTRIBUTION_VERBS.get(lead)
        if verb is None:
            continue
        window = " ".join(part.strip() for part in lines[start : last + 1])
        if verb.search(window) and _DIGIT.search(window):
            return True
    return False


def _quote_follows(lines: Sequence[str], index: int) -> bool:
    """True when the next non-blank line at or after `index` is a quoted line (no slicing: this runs
    for many lines, and copying the rest of the text each time would make the scan quadratic)."""
    while index < len(lines):
        if lines[index].strip():
            return _is_quote(lines[index])
        index += 1
    return False


def _skip_banner(lines: Sequence[str]) -> int:
    """Index of the first line after a gateway's "external sender" banner paragraph at the top."""
    index = 0
    while index < len(lines) and not lines[index].strip():
        index += 1
    if index == len(lines) or _BANNER.match(lines[index][:_PROBE].strip()) is None:
        return 0
    while index < len(lines) and lines[index].strip():
        index += 1
    return index


def _trim(lines: list[str]) -> list[str]:
    """Drop blank lines at both ends and separator rules left dangling at the end; where quotes were
    cut out, several blank lines in a row become one."""
    end = len(lines)
    while end > 0 and not lines[end - 1].strip(_SEPARATOR_CHARS):
        end -= 1
    begin = 0
    while begin < end and not lines[begin].strip():
        begin += 1
    out: list[str] = []
    for line in lines[begin:end]:
        line = line.rstrip()
        if line or out[-1]:
            out.append(line)
    return out
