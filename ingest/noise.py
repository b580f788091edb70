"""Recognise mail written by machines, which is stored as `ignored` and never proposed for billing.

`noise_reason` is a pure function of a `ParsedEmail`. It returns a short reason that names the header
or MIME part that decided, or None for mail a person wrote. The rules, in the order they are tried:

1. Our own outgoing notices carry a header we set (`X-PSP-Notice` by default).
2. Reports: multipart/report with report-type delivery-status, disposition-notification or
   feedback-report, or a message/delivery-status, message/disposition-notification or
   message/feedback-report part (also the RFC 6533 "global" variants): bounces, delay warnings, read
   receipts and ARF abuse complaints. Parts inside an attached message are not looked at, so a client
   who forwards us a bounce as an attachment still gets an answer.
3. `Auto-Submitted` with any value but "no" (RFC 3834: auto-generated, auto-replied, auto-notified).
4. `X-Autoreply`, `X-Autorespond` (any value but no/false/0); `X-Apple-Action: vacation` (iCloud's
   vacation replies carry nothing else).
5. `X-Auto-Response-Suppress` with All, OOF or AutoReply. The header is a *request* ("do not send
   automatic replies to this"), not a statement that the mail is automatic; but it is the sender's
   software asking to avoid mail loops: Exchange puts "All" on its own out-of-office replies and NDRs,
   and bulk senders put "OOF, AutoReply". People's mail does not ask that. "None" (suppress nothing)
   and receipts-only values (DR, NDR, RN, NRN) do not count.
6. `Precedence: bulk | junk | list | auto_reply`.
7. `List-Id` or `List-Unsubscribe`: mailing lists and newsletters. (If the support address is itself
   a list — e.g. a Google Group — every client mail carries List-Id; such a set-up must strip it.)
8. A sender typical of bounces: a MAILER-DAEMON or postmaster From address, or a null
   `Return-Path: <>`, the envelope sender bounces and auto-replies use so that they are never answered.
9. A calendar reply (text/calendar with METHOD:REPLY): the acceptance a calendar sends when someone
   clicks "Accept". An invitation (METHOD:REQUEST) is a person's work and is not noise.

Spam and short thank-you notes are human-looking mail: deciding on those is classification, not noise.
"""

from ingest.parsing import ParsedEmail
from psp.own_mail import NOTICE_HEADER

_REPORT_TYPES = {
    "delivery-status": "delivery-status report (bounce or delay warning)",
    "disposition-notification": "read receipt (disposition notification)",
    "feedback-report": "abuse feedback report (ARF)",
}
_REPORT_PARTS = {
    "message/delivery-status": _REPORT_TYPES["delivery-status"],
    "message/global-delivery-status": _REPORT_TYPES["delivery-status"],
    "message/disposition-notification": _REPORT_TYPES["disposition-notification"],
    "message/global-disposition-notification": _REPORT_TYPES["disposition-notification"],
    "message/feedback-report": _REPORT_TYPES["feedback-report"],
}
_FALSE_VALUES = frozenset({"no", "false", "0", "off"})
_SUPPRESS_AUTOMATIC = frozenset({"all", "oof", "autoreply"})
_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply", "auto-reply"})
_BOUNCE_LOCAL_PARTS = frozenset({"mailer-daemon", "postmaster"})
_NULL_PATHS = frozenset({"<>", "<<>>"})
_SHOWN = 60


def noise_reason(parsed: ParsedEmail) -> str | None:
    """Why `parsed` is automated mail that must never be billed, or None when a person wrote it."""
    if parsed.header(NOTICE_HEADER) is not None:
        return f"our own notice ({NOTICE_HEADER} header)"
    for rule in (_report, _auto_submitted, _autoreply_headers, _suppress, _precedence, _mailing_list, _bounce_sender):
        reason = rule(parsed)
        if reason is not None:
            return reason
    if parsed.calendar_method == "REPLY":
        return "calendar reply (text/calendar METHOD:REPLY)"
    return None


def _report(parsed: ParsedEmail) -> str | None:
    if parsed.report_type in _REPORT_TYPES:
        return f"{_REPORT_TYPES[parsed.report_type]}: multipart/report; report-type={parsed.report_type}"
    for content_type in parsed.content_types:
        if content_type in _REPORT_PARTS:
            return f"{_REPORT_PARTS[content_type]}: {content_type} part"
    return None


def _auto_submitted(parsed: ParsedEmail) -> str | None:
    value = _token(parsed.header("Auto-Submitted"))
    if value and value != "no":
        return f"Auto-Submitted: {_shown(value)}"
    return None


def _autoreply_headers(parsed: ParsedEmail) -> str | None:
    for name in ("X-Autoreply", "X-Autorespond"):
        value = parsed.header(name)
        if value is not None and value.strip().lower() not in _FALSE_VALUES:
            return f"{name}: {_shown(value)}" if value.strip() else f"{name} header"
    if _token(parsed.header("X-Apple-Action")) == "vacation":
        return "X-Apple-Action: vacation"
    return None


def _suppress(parsed: ParsedEmail) -> str | None:
    value = parsed.header("X-Auto-Response-Suppress")
    if value is None:
        return None
    flags = {flag.strip().lower() for flag in value.split(",")}
    if flags & _SUPPRESS_AUTOMATIC:
        return f"X-Auto-Response-Suppress: {_shown(value)}"
    return None


def _precedence(parsed: ParsedEmail) -> str | None:
    value = _token(parsed.header("Precedence"))
    if value in _BULK_PRECEDENCE:
        return f"Precedence: {value}"
    return None


def _mailing_list(parsed: ParsedEmail) -> str | None:
    for name in ("List-Id", "List-Unsubscribe"):
        value = parsed.header(name)
        if value is not None:
            return f"{name}: {_shown(value)}" if value else f"{name} header"
    return None


def _bounce_sender(parsed: ParsedEmail) -> str | None:
    if parsed.sender is not None and parsed.sender.split("@", 1)[0] in _BOUNCE_LOCAL_PARTS:
        return f"sender {_shown(parsed.sender)} (bounce)"
    return_path = parsed.header("Return-Path")
    if return_path is not None and return_path.replace(" ", "") in _NULL_PATHS:
        return "Return-Path: <> (null sender of bounces and auto-replies)"
    return None


def _shown(value: str) -> str:
    """A header value cut short for the reason, which is stored in a 200-character column."""
    value = value.strip()
    return value if len(value) <= _SHOWN else value[: _SHOWN - 1] + "…"


def _token(value: str | None) -> str:
    """The first word of a header value, lower-case: "auto-generated (warning-timeout)" -> "auto-generated"."""
    if not value:
        return ""
    return value.strip().split(None, 1)[0].rstrip(";").lower() if value.strip() else ""
