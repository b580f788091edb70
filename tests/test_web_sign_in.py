"""Clients sign in by mail: the request, the mail through a real relay, the one-time link — on
SQLite and PostgreSQL."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ledger.clients import add_client
from ledger.posting import buy_block
from psp.config import Settings, Smtp, Web
from psp.web.app import create_app
from psp.web.models import PortalLink
from tests.builders import STAFF
from tests.servers.smtp import SmtpServer

ADDRESS = "jane@acme-shop.example"


@pytest.fixture
def settings(relay: SmtpServer) -> Settings:
    return replace(
        Settings(),
        web=Web(base_url="https://support.example.test", login_attempts=3),
        smtp=Smtp(host="127.0.0.1", port=relay.port, security="none", sender="Support <support@example.test>"),
    )


@pytest.fixture
def browser(engine: Engine, settings: Settings) -> TestClient:
    with Session(engine) as session:
        acme = add_client(session, STAFF, "Acme Shop", emails=(ADDRESS,))
        buy_block(session, STAFF, acme, settings.policy, minutes=360, ref="INV-1", on=date(2026, 10, 1))
        session.commit()
    return TestClient(create_app(settings, engine), base_url="https://testserver")


def answer(browser: TestClient, email: str) -> tuple[int, str]:
    page = browser.get("/sign-in")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    response = browser.post("/sign-in", data={"email": email, "csrf": found.group(1)})
    return response.status_code, response.text


def ask(browser: TestClient, email: str) -> int:
    return answer(browser, email)[0]


def mailed_link(relay: SmtpServer) -> str:
    [(recipients, message)] = relay.inbox.messages
    assert recipients == (ADDRESS,)
    assert message["Subject"] == "Your link to the Support Tracking Report of Acme Shop"
    text = message.get_body(("plain",)).get_content()
    found = re.search(r"https://support\.example\.test(/sign-in/\S+)", text)
    assert found is not None, text
    return found.group(1)


def test_a_known_address_gets_a_link_that_opens_the_report_once(
    browser: TestClient, relay: SmtpServer, engine: Engine
) -> None:
    assert ask(browser, "Jane@Acme-Shop.example") == 200
    link = mailed_link(relay)
    opened = browser.get(link, follow_redirects=False)
    assert opened.status_code == 303
    report = browser.get(opened.headers["location"])
    assert report.status_code == 200
    assert "Acme Shop" in report.text
    assert ">360 <span" in report.text  # the balance in large type
    assert browser.get(link, follow_redirects=False).status_code == 404  # used once: gone
    token = link.rsplit("/", 1)[1]
    assert browser.get(f"/r/{token}").status_code == 404  # a sign-in link is never a report link
    with Session(engine) as session:
        purposes = session.exec(select(PortalLink.purpose, PortalLink.revoked_by).order_by(col(PortalLink.id))).all()
    assert purposes == [("sign-in", "sign-in"), ("report", None)]


def test_an_unknown_address_gets_the_same_answer_and_no_mail(browser: TestClient, relay: SmtpServer) -> None:
    unknown = answer(browser, "nobody@elsewhere.example")
    assert answer(browser, "not an address") == unknown
    assert relay.inbox.messages == []
    assert answer(browser, ADDRESS) == unknown  # a client's address: the same page, and a mail
    assert len(relay.inbox.messages) == 1
    assert "a link to its report is on its way" in unknown[1]


def test_requests_are_rate_limited_and_need_the_csrf_token(browser: TestClient, relay: SmtpServer) -> None:
    assert browser.post("/sign-in", data={"email": ADDRESS, "csrf": "forged"}).status_code == 403
    assert [ask(browser, ADDRESS) for _ in range(4)] == [200, 200, 200, 429]
    assert len(relay.inbox.messages) == 3


def test_an_expired_sign_in_link_opens_nothing(engine: Engine, settings: Settings, relay: SmtpServer) -> None:
    with Session(engine) as session:
        add_client(session, STAFF, "Acme Shop", emails=(ADDRESS,))
        session.commit()
    expired = replace(settings, web=replace(settings.web, sign_in_minutes=-1))
    browser = TestClient(create_app(expired, engine), base_url="https://testserver")
    assert ask(browser, ADDRESS) == 200
    assert browser.get(mailed_link(relay), follow_redirects=False).status_code == 404
