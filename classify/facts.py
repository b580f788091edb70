"""What the rules look at: one item's facts, gathered by the caller, plain values only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class Project:
    """An open (proposed) project of the item's client, which prep mail may mention."""

    id: int
    name: str


@dataclass(frozen=True)
class ItemFacts:
    """Everything a rule may test about one item.

    Attributes:
      channel: email, ticket, phone, skype, onsite.
      folder: the mailbox folder (INBOX, Sent), the helpdesk queue, or "manual".
      sender: "client", "unknown" or "staff".
      plan: the client's plan ("psp", "none"), None when there is no client.
      new_text: the sender's own words, without quoted history and signature.
      text: the whole message text, quotes and forwarded parts included.
      headers: lower-case header name → values.
      noise: why the item is automated mail, or None.
      thread_category: the category already given to the item's thread, or None.
      projects: the client's open projects.
      given_minutes: time recorded by a person (helpdesk TimeTaken, a logged call), taken as given.
      queue: the helpdesk queue of a ticket ("" for other items).
      custom_fields: a ticket's custom fields, name → values.
    """

    channel: str = "email"
    folder: str = "INBOX"
    sender: str = "unknown"
    plan: str | None = None
    subject: str = ""
    new_text: str = ""
    text: str = ""
    headers: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    attachments: int = 0
    noise: str | None = None
    thread_category: str | None = None
    projects: tuple[Project, ...] = ()
    given_minutes: int | None = None
    queue: str = ""
    custom_fields: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
