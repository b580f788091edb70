"""Settings from `psp.toml`: every key has a default, unknown keys are errors.

The file is optional: with none, the defaults below are the policy of the seed (six-hour blocks,
75 % of contact time logged in 5-minute steps, a two-hour minimum for clients without a plan).
Secrets never live in the file: it names the environment variable that holds each one.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from psp.errors import ConfigError

DEFAULT_CONFIG_FILE = "psp.toml"
DEFAULT_DATABASE_URL = "sqlite:///psp.db"
DATABASE_URL_ENV = "PSP_DATABASE_URL"


@dataclass(frozen=True)
class Policy:
    """The billing policy; every number the seed states is a setting here.

    Attributes:
      block_minutes: minutes credited by one PSP block.
      logged_fraction: share of estimated contact time that is logged (the "generous" rule).
      round_to_minutes: logged minutes are rounded down to this step.
      min_billable_minutes: floor for a billable item, so a real request never logs 0.
      nonplan_minimum_minutes: each request of a client without a plan costs at least this.
      renewal_thresholds: balances (minutes) at which a renewal notice is sent.
      timezone: the consultancy's zone; dates on reports and statements are taken in it.
      currency: ISO code used to print non-plan amounts.
      block_price_cents: price of one block in minor units, for "what a plan would have cost" on
        statements; 0 prices it at the client's hourly rate.
    """

    block_minutes: int = 360
    logged_fraction: float = 0.75
    round_to_minutes: int = 5
    min_billable_minutes: int = 5
    nonplan_minimum_minutes: int = 120
    renewal_thresholds: tuple[int, ...] = (60,)
    timezone: str = "Europe/London"
    currency: str = "GBP"
    block_price_cents: int = 0

    @property
    def fraction(self) -> Fraction:
        """The logged fraction as an exact ratio, so minutes never suffer float rounding."""
        return Fraction(str(self.logged_fraction))

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class Staff:
    """Who counts as us: mail from these is our reply, not a client request."""

    addresses: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()


@dataclass(frozen=True)
class Modules:
    """The module catalogue: bugs in `ours` are free, trouble from `third_party` is billable."""

    ours: tuple[str, ...] = ()
    third_party: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mail:
    """Intake of support mail.

    Attributes:
      trusted_authserv_id: the Authentication-Results identifier of our own mail server; when
        set, client mail is attributed automatically only on its DMARC (or aligned DKIM) pass.
      thread_window_days: a message without reply headers joins a thread with the same subject
        and participants only if that thread was active this recently.
      batch_size: messages fetched and stored per transaction.
      poll_seconds: pause between polls of a server without IDLE, and between RT syncs.
      idle_seconds: how long one IMAP IDLE waits before it is renewed.
      parse_workers: processes that parse mail in parallel; 0 means one per core, 1 parses in-process.
    """

    trusted_authserv_id: str = ""
    thread_window_days: int = 30
    batch_size: int = 200
    poll_seconds: int = 60
    idle_seconds: int = 300
    parse_workers: int = 0


@dataclass(frozen=True)
class ImapAccount:
    """One IMAP account (a `[[imap]]` table); the password is read from `password_env`.

    `security` is `ssl` (implicit TLS), `starttls`, or `none` — plaintext only when written here.
    `cafile` trusts a private certificate authority (a self-signed server certificate).
    """

    name: str = "support"
    host: str = "127.0.0.1"
    port: int = 993
    user: str = ""
    password_env: str = "PSP_IMAP_PASSWORD"
    security: str = "ssl"
    folders: tuple[str, ...] = ("INBOX", "Sent")
    cafile: str = ""


_SECURITY = ("ssl", "starttls", "none")


@dataclass(frozen=True)
class Smtp:
    """The relay for outgoing mail; with no host, messages are written to the outbox folder.

    `from` in the file is `sender` here (a Python keyword). `security` is starttls, ssl or none.
    """

    host: str = ""
    port: int = 587
    security: str = "starttls"
    user: str = ""
    password_env: str = "PSP_SMTP_PASSWORD"
    sender: str = "Support <support@example.com>"
    outbox: str = "outbox"
    cafile: str = ""


@dataclass(frozen=True)
class Rules:
    """The rules engine's file, and which of its rules may approve without review.

    Attributes:
      file: an ordered TOML rules file; empty means the default rules shipped with the product.
      auto_approve: names of rules whose `auto_approve = true` is honoured. Only whoever controls
        this file (an admin) can let a rule post minutes without a person looking at them.
    """

    file: str = ""
    auto_approve: tuple[str, ...] = ()


@dataclass(frozen=True)
class Web:
    """The web portal and staff pages (`psp serve`).

    Attributes:
      base_url: where clients reach the server (behind the reverse proxy); client links start with it.
      link_days: how long a client's report link stays valid.
      session_hours: how long a staff login lasts.
      secure_cookies: send the session cookie over HTTPS only; turn off only for plain-HTTP local use.
      secret_env: environment variable with the key that signs sessions; unset, a key kept in the
        database is used, so every worker agrees.
      login_attempts: failed logins allowed per account and address within `login_window_minutes`.
      login_window_minutes: the window of the login rate limit (and of clients' sign-in requests).
      sign_in_minutes: how long a sign-in link mailed to a client stays valid (it works once).
      signed_in_hours: how long the report link a client gets by signing in stays valid.
    """

    base_url: str = "http://127.0.0.1:8000"
    link_days: int = 90
    session_hours: int = 12
    secure_cookies: bool = True
    secret_env: str = "PSP_WEB_SECRET"
    login_attempts: int = 5
    login_window_minutes: int = 15
    sign_in_minutes: int = 15
    signed_in_hours: int = 24


@dataclass(frozen=True)
class Database:
    """Where the ledger lives when neither `--db` nor PSP_DATABASE_URL says otherwise."""

    url: str = DEFAULT_DATABASE_URL


@dataclass(frozen=True)
class Rt:
    """The Request Tracker helpdesk `psp sync rt` reads (REST 2.0); no url means none.

    Attributes:
      url: RT's base URL, e.g. https://rt.example.com (without /REST/2.0).
      token_env: the environment variable holding an RT auth token; used when set.
      user, password_env: basic auth instead of a token (the password from that variable).
      queues: the queues to read; empty reads every queue the RT user may see.
      timezone: the RT user's time zone; RT reads the dates of a ticket search in it.
      page_size: tickets and transactions per request (RT allows at most 100).
      interval_seconds: `psp poll --watch` syncs RT this often; 0 leaves RT out of the watch.
      timeout_seconds: how long one request may take before the sync fails.
      since: the first sync reads tickets updated from this day on (YYYY-MM-DD, UTC); empty: all.
    """

    url: str = ""
    token_env: str = "PSP_RT_TOKEN"
    user: str = ""
    password_env: str = "PSP_RT_PASSWORD"
    queues: tuple[str, ...] = ()
    timezone: str = "UTC"
    page_size: int = 100
    interval_seconds: int = 300
    timeout_seconds: int = 30
    since: str = ""

    @property
    def watched(self) -> bool:
        """Whether `psp poll --watch` includes RT: a URL and a non-zero interval."""
        return bool(self.url) and self.interval_seconds > 0


@dataclass(frozen=True)
class Tickets:
    """Ticket exports (CSV or JSON) read by `psp ingest`: which columns hold what.

    Each field lists the column names it may have; the first one the file has is used, compared
    without regard to case. A JSON column may be a dotted path into nested objects
    (`requester.email`).

    Attributes:
      system: the helpdesk the files come from; a ticket is known by (system, ticket id).
      entry: a column naming each row when a ticket has several rows (its comments); without
        one, a ticket is one row.
      minutes: whole minutes, or h:mm; empty means none recorded (the time is estimated).
    """

    system: str = "import"
    ticket_id: tuple[str, ...] = ("ticket_id", "ticket id", "id")
    requester: tuple[str, ...] = ("requester_email", "requester email", "requester.email", "requester", "email")
    subject: tuple[str, ...] = ("subject",)
    created: tuple[str, ...] = ("created", "created_at", "created at", "created time")
    body: tuple[str, ...] = ("body", "description")
    minutes: tuple[str, ...] = ("minutes", "time spent", "time tracked")
    entry: tuple[str, ...] = ("entry_id", "comment_id")
    queue: tuple[str, ...] = ("queue", "group")


@dataclass(frozen=True)
class Settings:
    """The whole configuration, as read from one file."""

    policy: Policy = field(default_factory=Policy)
    staff: Staff = field(default_factory=Staff)
    modules: Modules = field(default_factory=Modules)
    database: Database = field(default_factory=Database)
    mail: Mail = field(default_factory=Mail)
    rules: Rules = field(default_factory=Rules)
    smtp: Smtp = field(default_factory=Smtp)
    web: Web = field(default_factory=Web)
    rt: Rt = field(default_factory=Rt)
    tickets: Tickets = field(default_factory=Tickets)
    module_aliases: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    imap: tuple[ImapAccount, ...] = ()
    source: str = "defaults"


def _section(cls: type[Any], name: str, raw: Any, source: str) -> Any:
    """Build one section, rejecting unknown keys and values of the wrong type."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: [{name}] must be a table")
    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(f"{source}: unknown key {key!r} in [{name}] (known: {', '.join(known)})")
        default = known[key].default
        if isinstance(default, tuple):
            if not isinstance(value, list):
                raise ConfigError(f"{source}: [{name}].{key} must be a list")
            value = tuple(value)
        elif isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif not isinstance(value, type(default)) or isinstance(value, bool) != isinstance(default, bool):
            raise ConfigError(f"{source}: [{name}].{key} must be {type(default).__name__}, got {value!r}")
        values[key] = value
    return cls(**values)


def _check_policy(policy: Policy, source: str) -> None:
    if policy.block_minutes <= 0:
        raise ConfigError(f"{source}: [policy].block_minutes must be positive")
    if not 0 < policy.logged_fraction <= 1:
        raise ConfigError(f"{source}: [policy].logged_fraction must be in (0, 1]")
    if policy.round_to_minutes <= 0:
        raise ConfigError(f"{source}: [policy].round_to_minutes must be positive")
    if policy.min_billable_minutes < 0 or policy.nonplan_minimum_minutes < 0:
        raise ConfigError(f"{source}: [policy] minimums cannot be negative")
    if policy.block_price_cents < 0:
        raise ConfigError(f"{source}: [policy].block_price_cents cannot be negative")
    if any(not isinstance(t, int) for t in policy.renewal_thresholds):
        raise ConfigError(f"{source}: [policy].renewal_thresholds must be whole minutes")
    try:
        policy.zone  # noqa: B018 - resolving the zone is the check
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"{source}: [policy].timezone {policy.timezone!r} is not a known time zone") from exc


_SECTIONS: dict[str, type[Any]] = {
    "policy": Policy,
    "staff": Staff,
    "modules": Modules,
    "database": Database,
    "mail": Mail,
    "rules": Rules,
    "web": Web,
    "tickets": Tickets,
}


def _smtp(raw: Any, source: str) -> Smtp:
    if isinstance(raw, dict) and "from" in raw:
        raw = {("sender" if k == "from" else k): v for k, v in raw.items()}
    smtp: Smtp = _section(Smtp, "smtp", raw, source)
    if smtp.security not in _SECURITY:
        raise ConfigError(f"{source}: [smtp].security must be one of {', '.join(_SECURITY)}")
    return smtp


def _rt(raw: Any, source: str) -> Rt:
    rt: Rt = _section(Rt, "rt", raw, source)
    if not 1 <= rt.page_size <= 100:
        raise ConfigError(f"{source}: [rt].page_size must be between 1 and 100 (RT's limit)")
    if rt.interval_seconds < 0 or rt.timeout_seconds <= 0:
        raise ConfigError(f"{source}: [rt].interval_seconds cannot be negative, timeout_seconds must be positive")
    try:
        ZoneInfo(rt.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"{source}: [rt].timezone {rt.timezone!r} is not a known time zone") from exc
    if rt.since:
        try:
            date.fromisoformat(rt.since)
        except ValueError:
            raise ConfigError(f"{source}: [rt].since {rt.since!r} is not a day (YYYY-MM-DD)") from None
    return rt


def _aliases(raw: Any, source: str) -> Mapping[str, tuple[str, ...]]:
    """[module_aliases]: "Easy Gift Wrap" = ["EGW", "gift wrap module", "easy_gift_wrap"]."""
    if not isinstance(raw, dict) or not all(
        isinstance(v, list) and all(isinstance(a, str) and a for a in v) for v in raw.values()
    ):
        raise ConfigError(f'{source}: [module_aliases] maps a module name to a list of names, e.g. "EGW"')
    return MappingProxyType({name: tuple(values) for name, values in raw.items()})


def _imap_accounts(raw: Any, source: str) -> tuple[ImapAccount, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: write IMAP accounts as [[imap]] tables")
    accounts = tuple(_section(ImapAccount, "imap", table, source) for table in raw)
    names = [a.name for a in accounts]
    for account in accounts:
        if not account.user:
            raise ConfigError(f"{source}: [[imap]] {account.name!r} needs a user")
        if account.security not in _SECURITY:
            raise ConfigError(f"{source}: [[imap]] {account.name!r} security must be one of {', '.join(_SECURITY)}")
        if names.count(account.name) > 1:
            raise ConfigError(f"{source}: two [[imap]] accounts are named {account.name!r}")
    return accounts


def parse_settings(text: str, source: str) -> Settings:
    """Parse TOML text into settings; errors name the file and the key."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    built: dict[str, Any] = {}
    for name, value in raw.items():
        if name == "imap":
            built[name] = _imap_accounts(value, source)
        elif name == "smtp":
            built[name] = _smtp(value, source)
        elif name == "module_aliases":
            built[name] = _aliases(value, source)
        elif name == "rt":
            built[name] = _rt(value, source)
        elif name in _SECTIONS:
            built[name] = _section(_SECTIONS[name], name, value, source)
        else:
            raise ConfigError(f"{source}: unknown section [{name}]")
    settings = Settings(**built, source=source)
    _check_policy(settings.policy, source)
    return settings


def load_settings(path: Path | None) -> Settings:
    """Read the given file, else `psp.toml` in the current folder if present, else defaults."""
    if path is None:
        candidate = Path(DEFAULT_CONFIG_FILE)
        if not candidate.exists():
            return Settings()
        path = candidate
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    return parse_settings(text, str(path))


def database_url(cli_value: str | None, settings: Settings) -> str:
    """`--db` wins, then PSP_DATABASE_URL, then `[database].url`, then `sqlite:///psp.db`."""
    return cli_value or os.environ.get(DATABASE_URL_ENV) or settings.database.url
