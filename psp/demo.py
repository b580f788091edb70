"""`psp demo`: a month of a small consultancy's support, through the real services.

Everything goes through the same functions the commands use (log, approve, reject, reverse,
projects, blocks), on a fresh SQLite database in the demo folder, so the demo is also a smoke
test of the whole ledger. The month is the last full calendar month before today.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from ledger.clients import add_client, get_client
from ledger.models import Category, Channel, Client, Plan, ProjectStatus
from ledger.posting import approve, buy_block, decide_project, reject, reverse_entry
from ledger.projects import add_project
from ledger.proposals import log_contact
from ledger.statements import StatementMonth
from notify.mailer import OutboxMailer
from notify.outbox import Delivery, deliver_pending
from notify.renewals import record_notice, renewals_due
from notify.statements import gather, record_statements, render_all
from psp import db
from psp.commands.common import noon_utc
from psp.config import Settings, load_settings
from psp.web.accounts import add_staff
from psp.web.links import issue_link

STAFF = "anna@harbourcart.example"
SAMPLE_DATA = Path(__file__).with_name("sample_data")
SAMPLE_MAILDIR = SAMPLE_DATA / "maildir"


def demo_settings(settings: Settings) -> Settings:
    """The user's settings, with the demo consultancy's staff and module catalogue where they name none."""
    sample = load_settings(SAMPLE_DATA / "psp.toml")
    if not (settings.staff.domains or settings.staff.addresses):
        settings = replace(settings, staff=sample.staff)
    if not (settings.modules.ours or settings.modules.third_party):
        settings = replace(settings, modules=sample.modules, module_aliases=sample.module_aliases)
    return settings


def demo_month(today: date) -> date:
    """First day of the last full month."""
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


@dataclass(frozen=True)
class Contact:
    """One interaction of the scripted month and what staff decide about it."""

    day: int
    client: str
    channel: Channel
    minutes: int
    subject: str
    category: Category = Category.BILLABLE
    project: str | None = None
    decision: str = "approve"  # approve | pending | reject
    approve_minutes: int | None = None
    corrected_minutes: int | None = None  # approved, reversed three days later, approved again


_CLIENTS = (
    ("Acme Shop", Plan.PSP, ("jane@acme-shop.example",), ("acme-shop.example",), 0),
    ("Bluebell Teas", Plan.PSP, ("tom@bluebellteas.example",), ("bluebellteas.example",), 0),
    ("Corner Bikes", Plan.NONE, ("sam@cornerbikes.example",), ("cornerbikes.example",), 8500),
    ("Gartenwelt GmbH", Plan.PSP, ("k.schmidt@gartenwelt.example",), ("gartenwelt.example",), 0),
)
_PROJECTS = (
    ("acme-shop", "B2B Wholesale Portal"),
    ("bluebell-teas", "Subscription Boxes"),
    ("gartenwelt-gmbh", "Multi-Warehouse Stock Sync"),  # still open: its prep mail waits in the demo
)
_MONTH = (
    Contact(3, "acme-shop", Channel.PHONE, 40, "Blank checkout page after One-Page Checkout update"),
    Contact(5, "acme-shop", Channel.EMAIL, 25, "Easy Gift Wrap option missing on product page", Category.MODULE_BUG),
    Contact(
        8,
        "acme-shop",
        Channel.SKYPE,
        60,
        "B2B portal: requirements meeting",
        Category.PROJECT_PREP,
        "B2B Wholesale Portal",
    ),
    Contact(10, "acme-shop", Channel.ONSITE, 120, "Staff training: order administration", corrected_minutes=60),
    Contact(
        12,
        "acme-shop",
        Channel.EMAIL,
        30,
        "B2B portal: review of the spec draft",
        Category.PROJECT_PREP,
        "B2B Wholesale Portal",
    ),
    Contact(20, "acme-shop", Channel.PHONE, 15, "Question about shipping zones", decision="pending"),
    Contact(4, "bluebell-teas", Channel.EMAIL, 20, "Quote for a product configurator", Category.PRE_SALES),
    Contact(6, "bluebell-teas", Channel.PHONE, 90, "Planning the upgrade to Zen Cart 2.1"),
    Contact(
        9,
        "bluebell-teas",
        Channel.SKYPE,
        45,
        "Subscription boxes: scope call",
        Category.PROJECT_PREP,
        "Subscription Boxes",
    ),
    Contact(
        11,
        "bluebell-teas",
        Channel.EMAIL,
        40,
        "Subscription boxes: spec v1",
        Category.PROJECT_PREP,
        "Subscription Boxes",
    ),
    Contact(18, "bluebell-teas", Channel.ONSITE, 180, "Server migration and DNS changes"),
    Contact(22, "bluebell-teas", Channel.EMAIL, 10, "Admin password reset", decision="reject"),
    Contact(25, "bluebell-teas", Channel.PHONE, 30, "Image Handler thumbnails broken", decision="pending"),
    Contact(27, "bluebell-teas", Channel.EMAIL, 60, "Checkout slow after the server migration"),  # balance 55
    Contact(7, "corner-bikes", Channel.PHONE, 30, "Payment module error at checkout"),
    Contact(16, "corner-bikes", Channel.EMAIL, 150, "Custom sales report export", approve_minutes=100),
    Contact(
        21, "corner-bikes", Channel.PHONE, 20, "What would a PSP block cost?", Category.PRE_SALES, decision="pending"
    ),
)


def create_demo_database(folder: Path) -> Engine:
    """A fresh, migrated SQLite database in `folder` (an older demo database is replaced)."""
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        (folder / f"psp.db{suffix}").unlink(missing_ok=True)
    engine = db.make_engine(f"sqlite:///{folder / 'psp.db'}", must_exist=False)
    db.migrate(engine)
    return engine


def populate(session: Session, settings: Settings, today: date) -> None:
    """Play the scripted month: clients, blocks, contacts, decisions, projects, a reversal."""
    policy = settings.policy
    first = demo_month(today)

    def day(n: int) -> date:
        return first.replace(day=n)

    clients: dict[str, Client] = {}
    for name, plan, emails, domains, rate in _CLIENTS:
        client = add_client(session, STAFF, name, plan=plan, emails=emails, domains=domains, hourly_rate_cents=rate)
        clients[client.slug] = client
    for n, slug in enumerate(("acme-shop", "bluebell-teas", "gartenwelt-gmbh"), start=1):
        buy_block(session, STAFF, clients[slug], policy, minutes=policy.block_minutes, ref=f"INV-{1000 + n}", on=day(n))
    projects = {name: add_project(session, STAFF, clients[slug], name) for slug, name in _PROJECTS}

    for contact in sorted(_MONTH, key=lambda c: c.day):
        project = projects[contact.project] if contact.project else None
        proposal = log_contact(
            session,
            STAFF,
            clients[contact.client],
            policy,
            contact_minutes=contact.minutes,
            channel=contact.channel,
            subject=contact.subject,
            category=contact.category,
            project_id=project.id if project else None,
            occurred_at=noon_utc(day(contact.day), settings),
        )
        assert proposal.id is not None
        if contact.decision == "approve":
            approval = approve(session, STAFF, proposal.id, policy, minutes=contact.approve_minutes)
            if contact.corrected_minutes is not None and approval.entry and approval.entry.id:
                reverse_entry(session, STAFF, approval.entry.id, "agreed with the client", day(contact.day + 3))
                approve(session, STAFF, proposal.id, policy, minutes=contact.corrected_minutes, note="corrected")
        elif contact.decision == "reject":
            reject(session, STAFF, proposal.id, "duplicate of the phone call the same day")
    for name, status, decided in (
        ("B2B Wholesale Portal", ProjectStatus.ACCEPTED, 15),
        ("Subscription Boxes", ProjectStatus.DECLINED, 14),
    ):
        decide_project(session, STAFF, projects[name].id or 0, status, policy, day(decided))


def send_demo_mail(engine: Engine, settings: Settings, today: date, outbox: Path) -> list[Delivery]:
    """The month's statements and any renewal notice due, written to `outbox` as .eml files.

    Always the outbox, whatever relay the settings name: the demo's clients are made up.
    """
    outbox.mkdir(parents=True, exist_ok=True)
    for old in outbox.glob("*.eml"):
        old.unlink()
    first = demo_month(today)
    rendered = render_all(gather(engine, settings, StatementMonth(first.year, first.month), None), settings)
    with db.transaction(engine) as session:
        for notice in renewals_due(session, settings, today):
            record_notice(session, notice, settings)
        record_statements(session, settings, rendered)
    return deliver_pending(engine, OutboxMailer(outbox), pause_seconds=0)


def web_access(engine: Engine, settings: Settings) -> tuple[str, str]:
    """A staff login with a fresh random password and Acme Shop's report link, to try the web pages."""
    password = secrets.token_urlsafe(12)
    with db.transaction(engine) as session:
        add_staff(session, STAFF, STAFF, password)
        link = issue_link(session, STAFF, get_client(session, "acme-shop"), settings.web)
    return password, link.url
