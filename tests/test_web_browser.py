"""End to end in a real headless Chromium (Debian's package, driven by Playwright) against the real server.

A client opens their link and sees balance and rows; staff log in, approve with the keyboard,
and the client's balance changes; a subject holding `<script>` shows as text and never runs.
The suite's set-up (scripts/services/install.sh) installs Chromium when it is missing.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, Page, expect, sync_playwright
from sqlalchemy.engine import Engine
from sqlmodel import Session

from ledger.posting import buy_block
from psp import db
from psp.config import Settings, Web
from psp.web.accounts import add_staff
from psp.web.links import issue_link
from tests import builders
from tests.servers.chromium import LAUNCH_FLAGS, chromium_path
from tests.servers.web import running_server

PASSWORD = "correct horse battery"
STAFF_EMAIL = "anna@example.test"
HOSTILE = "<script>window.__pwned = 1; alert('pwned')</script> Checkout"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), args=list(LAUNCH_FLAGS))
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    opened = context.new_page()
    dialogs: list[str] = []

    def refuse(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    opened.on("dialog", refuse)
    yield opened
    context.close()
    assert dialogs == [], "a page ran script from mail content"


@pytest.fixture
def served(tmp_path: Path, sqlite_template: Path) -> Iterator[tuple[str, str, Engine]]:
    """The real server on a populated SQLite database; yields its URL and the client's report URL."""
    path = tmp_path / "psp.db"
    shutil.copyfile(sqlite_template, path)
    engine = db.make_engine(f"sqlite:///{path}")
    with Session(engine, expire_on_commit=False) as session:
        acme = builders.client(session, "Acme Shop")
        buy_block(session, STAFF_EMAIL, acme, Settings().policy, minutes=360, ref="INV-1", on=date(2026, 10, 1))
        builders.proposal(session, acme, 30, subject=HOSTILE)
        add_staff(session, "admin", STAFF_EMAIL, PASSWORD)
        session.commit()
        with running_server(Settings(), engine) as base:
            settings = replace(Settings(), web=Web(base_url=base))
            link = issue_link(session, STAFF_EMAIL, acme, settings.web)
            session.commit()
            yield base, link.url, engine
    engine.dispose()


def test_client_sees_balance_and_rows(page: Page, served: tuple[str, str, Engine]) -> None:
    _, report, _ = served
    page.goto(report)
    expect(page.locator("#balance")).to_contain_text("360")
    expect(page.locator("#pending")).to_have_text("30 min")
    expect(page.locator("table.report tbody tr")).to_have_count(1)
    expect(page.locator("table.report")).to_contain_text("PSP block purchased (360 min), ref INV-1")
    expect(page.locator("svg.balance-chart polyline")).to_have_count(1)


def test_staff_approve_with_the_keyboard_and_the_client_balance_changes(
    page: Page, served: tuple[str, str, Engine]
) -> None:
    base, report, _ = served
    page.goto(f"{base}/staff/review")
    expect(page).to_have_url(f"{base}/staff/login")
    page.fill("input[name=email]", STAFF_EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/staff/review")
    subject = page.locator(".proposal .subject").first
    expect(subject).to_have_text(HOSTILE)  # shown as text, not run
    assert page.evaluate("window.__pwned") is None
    page.keyboard.press("j")  # focus the first proposal (static script, CSP script-src 'self')
    page.keyboard.press("e")
    page.keyboard.type("25")
    page.keyboard.press("Escape")
    page.keyboard.press("a")
    expect(page.locator(".flash.ok")).to_contain_text("approved proposal 1")
    expect(page.locator(".proposal")).to_have_count(0)
    page.goto(report)
    expect(page.locator("#balance")).to_contain_text("335")
    expect(page.locator("#pending")).to_have_text("0 min")
    expect(page.locator("table.report")).to_contain_text(HOSTILE)


def test_forged_and_revoked_links_show_nothing(page: Page, served: tuple[str, str, Engine]) -> None:
    base, report, _ = served
    response = page.goto(report[:-4] + "AAAA")
    assert response is not None
    assert response.status == 404
    expect(page.locator("h1")).to_have_text("Not found")
    response = page.goto(f"{base}/staff/mail")
    assert response is not None
    expect(page).to_have_url(f"{base}/staff/login")
