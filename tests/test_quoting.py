"""new_text: what the writer added, without quoted history and signature, in the mail's own words."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.quoting import new_text

HOSTILE = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "hostile"


def body(text: str) -> str:
    return text.strip("\n") + "\n"


@pytest.mark.parametrize(
    "attribution",
    [
        "On Mon, Jan 12, 2026 at 8:47 AM Jane Whitfield <jane@acme-shop.example> wrote:",
        "On 12/01/2026 08:47, Jane Whitfield wrote:",
        "On 9 Jan 2014, at 2:47, George Plymale wrote:",
        "Le lun. 19 janv. 2026 à 14:22, Marie Dupré <marie@delices-lyon.example> a écrit :",
        "Am Mo., 19. Jan. 2026 um 14:22 Uhr schrieb Katrin Schmidt <k.schmidt@gartenwelt.example>:",
        "Am 19.01.2026 um 14:22 schrieb Katrin Schmidt:",
        "Op ma 19 jan. 2026 om 14:22 schreef Jan de Vries <jan@example.nl>:",
        "El lun, 19 ene 2026 a las 14:22, Lucía (<lucia@tiendaolivos.example>) escribió:",
        "Den mån 19 jan. 2026 kl 14:22 skrev Lars Lindqvist <lars@nordicknits.example>:",
    ],
)
def test_attributions_in_six_languages_end_the_new_text(attribution: str) -> None:
    text = body(f"Thanks, that works.\n\n{attribution}\n> Could you check the cart?\n> Anna\n")
    assert new_text(text) == "Thanks, that works."


@pytest.mark.parametrize(
    "attribution",
    [
        "On Mon, Jan 12, 2026 at 8:47 AM Jane Whitfield <\njane@acme-shop.example> wrote:",
        "On Mon, Jan 12, 2026 at 8:47 AM\nJane Whitfield <jane@acme-shop.example>\nwrote:",
        "Am So., 1. Jan. 2023 um 17:22 Uhr\nschrieb John Doe <\nnoreply@github.com>:",
        "Le 19 janv. 2026 à 14:22, Marie Dupré\n<marie@delices-lyon.example> a écrit :",
    ],
)
def test_wrapped_attributions_are_recognised(attribution: str) -> None:
    assert new_text(body(f"Yes please.\n\n{attribution}\n\n> old text\n")) == "Yes please."


def test_the_nearest_line_starts_a_wrapped_attribution() -> None:
    text = body("Am heutigen Tage\nAm So., 1. Jan. 2023 um 17:22 Uhr schrieb John Doe <\nnoreply@github.com>:\n> x\n")
    assert new_text(text) == "Am heutigen Tage"


def test_on_in_ordinary_text_is_not_an_attribution() -> None:
    text = body("On your server you can run:\n\n    telnet 127.0.0.1 52698\n\nOn Monday I wrote to the host.\n")
    assert new_text(text) == text.strip()


@pytest.mark.parametrize(
    "block",
    [
        "From: Anna Price [mailto:anna@harbourcart.example]\nSent: Monday, January 12, 2026 9:06 AM\nTo: Jane",
        "________________________________\nFrom: Anna Price <anna@harbourcart.example>\nSent: 13 January 2026 11:40",
        "-----Original Message-----\nFrom: Anna Price\nSent: Monday",
        "Von: Anna Price <anna@harbourcart.example>\nGesendet: Montag, 19. Januar 2026 10:05\nAn: Katrin Schmidt",
        "*Van:* Anna Price [mailto:anna@harbourcart.example]\n*Verzonden:* maandag 19 januari 2026 10:05",
        "De : Anna Price <anna@harbourcart.example>\nEnvoyé : lundi 19 janvier 2026 10:05\nÀ : Marie",
        "De: Anna Price\nEnviado el: lunes, 19 de enero de 2026 10:05\nPara: Lucía\nAsunto: presupuesto",
        "Från: Anna Price\nSkickat: den 19 januari 2026 10:05\nTill: Lars",
        "-----Ursprüngliche Nachricht-----\nVon: Anna Price",
        "---------- Forwarded message ---------\nFrom: Host <support@host.example>",
        "-------- Weitergeleitete Nachricht --------\nBetreff: Test",
        "Begin forwarded message:\n\nFrom: Host <support@host.example>",
    ],
)
def test_header_blocks_and_separators_end_the_new_text(block: str) -> None:
    text = body(f"See below.\n\nJane\n\n{block}\n\nOld text that has no quote marks.\n")
    assert new_text(text) == "See below.\n\nJane"


def test_a_from_line_without_more_headers_is_ordinary_text() -> None:
    text = body("From: the shop admin page I get a blank screen.\n\nCan you look?\n")
    assert new_text(text) == text.strip()


@pytest.mark.parametrize(
    "footer",
    [
        "-- \nJane Whitfield\nE-commerce Manager",
        "--\nBen",
        "Sent from my iPhone",
        "Sent from my Galaxy",
        "Get Outlook for Android",
        "Von meinem iPhone gesendet",
        "Envoyé de mon iPhone",
        "Verzonden vanaf mijn iPad",
        "Enviado desde mi iPhone",
        "Skickat från min iPhone",
    ],
)
def test_signatures_and_mobile_footers_are_removed(footer: str) -> None:
    assert new_text(body(f"Works now, thanks!\n\n{footer}\n")) == "Works now, thanks!"


def test_signature_dashes_inside_a_line_are_text() -> None:
    text = body("Use the --force flag -- carefully.\n")
    assert new_text(text) == text.strip()


def test_a_gateway_banner_at_the_top_is_removed() -> None:
    text = body(
        "CAUTION: This email originated from outside of the organization. Do not click links.\n\n"
        "Hi Ben,\n\nthe shop is down.\n"
    )
    assert new_text(text) == "Hi Ben,\n\nthe shop is down."


def test_a_warning_that_is_the_clients_own_text_stays() -> None:
    text = body("Warning: the shop is down outside business hours.\n\nCan you check the cron job?\n")
    assert new_text(text) == text.strip()


def test_bottom_posting_keeps_the_answer_below_the_quote() -> None:
    text = body("On 12/01/2026 08:47, Jane wrote:\n> Is it fixed?\n\nYes, since this morning.\n\n-- \nBen\n")
    assert new_text(text) == "Yes, since this morning."


def test_inline_answers_between_quotes_are_kept() -> None:
    text = body(
        """
Hi Jane,

On Tue, Feb 03, 2026 at 02:12:37PM +0000, Jane Whitfield wrote:
> The gift wrap option has disappeared.

Sorry about that - my fault.

> We've had two customers asking.

The fix is live.

Ben

--
Ben Okafor
"""
    )
    assert new_text(text) == "Hi Jane,\n\nSorry about that - my fault.\n\nThe fix is live.\n\nBen"


def test_old_text_without_quote_marks_after_a_quote_is_history() -> None:
    text = body(
        """
First reply.

Am So., 1. Jan. 2023 um 17:22 Uhr schrieb John Doe <noreply@github.com>:
> Second reply.

Third reply, pasted without quote marks.

On 07.08.2022 um 23:55, John Doe <noreply@github.com> wrote:

Fourth reply.
"""
    )
    assert new_text(text) == "First reply."


def test_quoted_lines_without_attribution_are_dropped() -> None:
    assert new_text(body("> Is it fixed?\nYes.\n> And the invoice?\nSent today.\n")) == "Yes.\nSent today."


def test_a_message_that_is_only_history_falls_back_to_the_original() -> None:
    forward = body("---------- Forwarded message ---------\nFrom: Host <support@host.example>\n\nPHP upgrade\n")
    quote = body("> only a quote\n> nothing else\n")
    signature = body("--\nBen Okafor\n")
    for text in (forward, quote, signature):
        assert new_text(text) == text


@pytest.mark.parametrize("text", ["", "\n\n", "   "])
def test_blank_text_stays_blank(text: str) -> None:
    assert new_text(text) == text


def test_crlf_and_cr_line_ends_are_understood() -> None:
    lf = body("Thanks!\n\nOn 12/01/2026 08:47, Jane wrote:\n> old\n")
    assert new_text(lf.replace("\n", "\r\n")) == new_text(lf.replace("\n", "\r")) == "Thanks!"


# --- pathological input ---------------------------------------------------------------------------
# A linear scan finishes these in milliseconds; a backtracking pattern would take minutes. The bound
# is generous on purpose: it catches a catastrophe, not a slow machine.
LIMIT_SECONDS = 2.0


def timed(text: str) -> tuple[str, float]:
    start = time.perf_counter()
    result = new_text(text)
    return result, time.perf_counter() - start


@pytest.mark.parametrize(
    "line",
    [
        "a" * 1_000_000,
        "On " * 330_000 + "wrote",
        ">" * 1_000_000,
        "From:" + " " * 1_000_000 + "x",
        "-" * 1_000_000,
        "CAUTION: " + " " * 1_000_000,
        "On 1 " + "x " * 500_000 + "wrote:",
    ],
)
def test_a_one_megabyte_line_is_handled_fast(line: str) -> None:
    result, seconds = timed(f"Hello\n{line}\nBye\n")
    assert seconds < LIMIT_SECONDS
    assert result


def test_many_short_candidate_lines_are_handled_fast() -> None:
    text = "On 1 Jan 2026 Jane\n" * 20_000 + "From: x\n" * 20_000 + "wrote:\n" * 20_000
    result, seconds = timed(text)
    assert seconds < LIMIT_SECONDS
    assert result


def test_the_reply_parser_pathological_fixture() -> None:
    path = HOSTILE / "replyparser__pathological.txt"
    if not path.exists():
        pytest.skip(f"the shared hostile corpus is not beside the clone ({HOSTILE})")
    text = path.read_text(encoding="utf-8")
    _, seconds = timed(text * 200)
    assert seconds < LIMIT_SECONDS
    assert new_text(text) == (
        "I think you're onto something. I will try to fix the problem as soon as I\nget back to a computer."
    )


# --- properties ------------------------------------------------------------------------------------


_PIECES = ["a", " ", "\n", "\r\n", ">", "-- ", ":", "On ", " wrote:", "From: ", "Sent: ", "1", "Sent from my iPhone"]


@settings(max_examples=400)
@given(st.lists(st.sampled_from(_PIECES), max_size=60).map("".join))
def test_never_empty_and_never_invented(text: str) -> None:
    result = new_text(text)
    if text.strip():
        assert result.strip()
    source_lines = {line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")}
    assert all(line in source_lines for line in result.split("\n")) or result == text
