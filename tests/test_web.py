"""The web shell over HTTP (FastAPI's test client): every route against every role, then each action.

The table states who may open what: a client's link opens that client's pages only (anything
else is 404, exactly like a link that never existed), staff pages need a session, and every form
needs the session's CSRF token. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ledger.models import AuditEvent, Category, Client, ClientEmail, LedgerEntry, Proposal, ProposalStatus, SourceItem
from ledger.posting import approve, buy_block
from ledger.projects import add_project
from ledger.reports import balance
from notify.models import Statement
from psp.config import Settings, Web
from psp.web import deps
from psp.web.accounts import add_staff
from psp.web.app import SESSION_COOKIE, create_app
from psp.web.links import issue_link, revoke_link
from psp.web.models import PortalLink
from tests import builders

PASSWORD = "correct horse battery"
STAFF_EMAIL = "anna@example.test"


@dataclass
class Site:
    """A populated database, the app over it, and the keys each role holds."""

    engine: Engine
    settings: Settings
    tokens: dict[str, str]
    ids: dict[str, int]

    def client(self) -> TestClient:
        return TestClient(create_app(self.settings, self.engine), base_url="https://testserver")

    def staff(self) -> TestClient:
        client = self.client()
        response = client.post(
            "/staff/login", data={"email": STAFF_EMAIL, "password": PASSWORD, "csrf": csrf_of(client, "/staff/login")}
        )
        assert response.status_code == 200, response.text
        return client

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)


def csrf_of(client: TestClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def token_of(url: str) -> str:
    return url.rsplit("/r/", 1)[1]


def _statement(owner: Client, month: str) -> Statement:
    assert owner.id is not None
    return Statement(
        client_id=owner.id,
        month=month,
        opening_minutes=360,
        closing_minutes=300,
        content_hash="0" * 64,
        text_body="statement",
        html_body=f"<html><body><h1>Statement {owner.name} {month}</h1></body></html>",
        csv_attachment="date,minutes\r\n",
        pdf_attachment=b"%PDF-1.4 test",
    )


@pytest.fixture
def site(engine: Engine) -> Site:
    settings = replace(Settings(), web=Web(base_url="https://support.example.test"))
    policy = settings.policy
    with Session(engine, expire_on_commit=False) as session:
        acme = builders.client(session, "Acme Shop")
        bluebell = builders.client(session, "Bluebell Teas")
        buy_block(session, STAFF_EMAIL, acme, policy, minutes=360, ref="INV-1", on=date(2026, 10, 1))
        buy_block(session, STAFF_EMAIL, bluebell, policy, minutes=360, ref="INV-2", on=date(2026, 10, 1))
        posted = builders.proposal(session, acme, 45, subject="Shipping zones", on=date(2026, 10, 5))
        approve(session, STAFF_EMAIL, posted.id or 0, policy)
        pending = builders.proposal(session, acme, 30, subject="<script>alert('x')</script> Checkout")
        other = builders.proposal(session, bluebell, 20, subject="Tea images", on=date(2026, 11, 4))
        formula = builders.proposal(session, acme, 10, subject='=HYPERLINK("http://evil","x")', on=date(2026, 10, 7))
        approve(session, STAFF_EMAIL, formula.id or 0, policy)
        project = add_project(session, STAFF_EMAIL, acme, "B2B portal")
        add_staff(session, "admin", STAFF_EMAIL, PASSWORD)
        acme_link = issue_link(session, STAFF_EMAIL, acme, settings.web)
        bluebell_link = issue_link(session, STAFF_EMAIL, bluebell, settings.web)
        expired = issue_link(session, STAFF_EMAIL, acme, settings.web, timedelta(days=-1))
        revoked = issue_link(session, STAFF_EMAIL, acme, settings.web)
        revoke_link(session, STAFF_EMAIL, revoked.id)
        acme_statement, bluebell_statement = _statement(acme, "2026-10"), _statement(bluebell, "2026-10")
        session.add_all([acme_statement, bluebell_statement])
        session.commit()
        ids = {
            "pending": pending.id or 0,
            "other": other.id or 0,
            "project": project.id or 0,
            "acme_statement": acme_statement.id or 0,
            "bluebell_statement": bluebell_statement.id or 0,
            "acme_link": acme_link.id,
        }
    tokens = {
        "acme": token_of(acme_link.url),
        "bluebell": token_of(bluebell_link.url),
        "expired": token_of(expired.url),
        "revoked": token_of(revoked.url),
        "anonymous": "x" * 43,
    }
    return Site(engine, settings, tokens, ids)


# role × route × expected status. {token} is the role's own link token; ids come from the fixture.
PORTAL_TABLE = [
    ("acme", "/r/{token}", 200),
    ("acme", "/r/{token}?month=2026-10&page=1", 200),
    ("acme", "/r/{token}?month=junk&page=2", 200),
    ("acme", "/r/{token}/report.csv", 200),
    ("acme", "/r/{token}/report.csv?month=2026-10", 200),
    ("acme", "/r/{token}/statements/{acme_statement}.html", 200),
    ("acme", "/r/{token}/statements/{acme_statement}.pdf", 200),
    ("acme", "/r/{token}/statements/{bluebell_statement}.html", 404),
    ("acme", "/r/{token}/statements/{bluebell_statement}.pdf", 404),
    ("acme", "/r/{token}/statements/999999.html", 404),
    ("acme", "/r/{token}?page=0", 404),
    ("bluebell", "/r/{token}", 200),
    ("bluebell", "/r/{token}/statements/{bluebell_statement}.html", 200),
    ("bluebell", "/r/{token}/statements/{acme_statement}.pdf", 404),
    ("expired", "/r/{token}", 404),
    ("expired", "/r/{token}/report.csv", 404),
    ("revoked", "/r/{token}", 404),
    ("revoked", "/r/{token}/statements/{acme_statement}.html", 404),
    ("anonymous", "/r/{token}", 404),
    ("anonymous", "/r/{token}/report.csv", 404),
    ("anonymous", "/r/", 404),
    ("acme", "/staff", 303),
    ("acme", "/staff/review", 303),
]
STAFF_PAGES = [
    "/staff",
    "/staff/review",
    "/staff/review?client=acme-shop",
    "/staff/clients/acme-shop",
    "/staff/projects",
    "/staff/unmatched",
    "/staff/mail",
]
STAFF_POSTS = [
    ("/staff/review/{pending}", {"action": "approve"}),
    ("/staff/review/approve", {"ids": "{pending}"}),
    ("/staff/clients/acme-shop/links", {}),
    ("/staff/links/{acme_link}/revoke", {}),
    ("/staff/clients/acme-shop/blocks", {"minutes": "360"}),
    ("/staff/projects/{project}", {"action": "decline"}),
    ("/staff/unmatched/{pending}", {"client": "acme-shop"}),
    ("/staff/logout", {}),
]


def _path(site: Site, template: str, role: str = "anonymous") -> str:
    return template.format(token=site.tokens.get(role, ""), **site.ids)


@pytest.mark.parametrize(("role", "route", "expected"), PORTAL_TABLE)
def test_portal_route_answers_each_role(site: Site, role: str, route: str, expected: int) -> None:
    response = site.client().get(_path(site, route, role), follow_redirects=False)
    assert response.status_code == expected
    if expected == 303:
        assert response.headers["location"] == "/staff/login"


def test_staff_pages_need_a_session_and_open_with_one(site: Site) -> None:
    anonymous, staff = site.client(), site.staff()
    for route in STAFF_PAGES:
        assert anonymous.get(route, follow_redirects=False).status_code == 303, route
        assert staff.get(route).status_code == 200, route
    assert staff.get("/staff/clients/no-such-client").status_code == 404
    assert anonymous.get("/", follow_redirects=False).headers["location"] == "/staff"


@pytest.mark.parametrize(("route", "form"), STAFF_POSTS)
def test_every_staff_form_needs_a_session_and_the_csrf_token(site: Site, route: str, form: dict[str, str]) -> None:
    path = _path(site, route)
    data = {k: _path(site, v) for k, v in form.items()}
    assert site.client().post(path, data=data, follow_redirects=False).status_code == 303  # to the login page
    staff = site.staff()
    assert staff.post(path, data=data, follow_redirects=False).status_code == 403
    assert staff.post(path, data={**data, "csrf": "forged"}, follow_redirects=False).status_code == 403
    good = staff.post(path, data={**data, "csrf": csrf_of(staff, "/staff")}, follow_redirects=False)
    assert good.status_code in (200, 303)


def test_login_form_needs_csrf_and_wrong_password_is_refused(site: Site) -> None:
    client = site.client()
    assert client.post("/staff/login", data={"email": STAFF_EMAIL, "password": PASSWORD}).status_code == 403
    csrf = csrf_of(client, "/staff/login")
    wrong = client.post("/staff/login", data={"email": STAFF_EMAIL, "password": "nope nope nope", "csrf": csrf})
    assert wrong.status_code == 401
    assert "wrong e-mail address or password" in wrong.text
    unknown = client.post("/staff/login", data={"email": "who@example.test", "password": PASSWORD, "csrf": csrf})
    assert unknown.status_code == 401
    assert client.get("/staff/review", follow_redirects=False).status_code == 303


def test_login_attempts_are_rate_limited_per_account_and_address(site: Site) -> None:
    client = site.client()
    csrf = csrf_of(client, "/staff/login")
    for _ in range(site.settings.web.login_attempts):
        bad = client.post("/staff/login", data={"email": STAFF_EMAIL, "password": "wrong password", "csrf": csrf})
        assert bad.status_code == 401
    blocked = client.post("/staff/login", data={"email": STAFF_EMAIL, "password": PASSWORD, "csrf": csrf})
    assert blocked.status_code == 429
    assert "too many failed logins" in blocked.text
    other = site.client()  # another account is not locked out by these failures
    with site.session() as session:
        add_staff(session, "admin", "ben@example.test", PASSWORD)
        session.commit()
    ok = other.post(
        "/staff/login",
        data={"email": "ben@example.test", "password": PASSWORD, "csrf": csrf_of(other, "/staff/login")},
    )
    assert ok.status_code == 200


def test_session_cookie_is_signed_secure_httponly_strict(site: Site) -> None:
    client = site.client()
    response = client.post(
        "/staff/login",
        data={"email": STAFF_EMAIL, "password": PASSWORD, "csrf": csrf_of(client, "/staff/login")},
        follow_redirects=False,
    )
    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith(SESSION_COOKIE)
    for flag in ("secure", "httponly", "samesite=strict"):
        assert flag in cookie
    forged = site.client()
    forged.cookies.set(SESSION_COOKIE, response.cookies[SESSION_COOKIE][:-4] + "AAAA", domain="testserver")
    assert forged.get("/staff/review", follow_redirects=False).status_code == 303


def test_security_headers_on_every_kind_of_page(site: Site) -> None:
    client = site.client()
    for path in (f"/r/{site.tokens['acme']}", "/staff/login", "/r/unknown", "/static/psp.css"):
        headers = client.get(path).headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "'unsafe-inline'" not in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-content-type-options"] == "nosniff"
    statement = client.get(_path(site, "/r/{token}/statements/{acme_statement}.html", "acme"))
    assert "sandbox" in statement.headers["content-security-policy"]


def test_report_shows_balance_rows_and_escapes_mail_content(site: Site) -> None:
    page = site.client().get(f"/r/{site.tokens['acme']}").text
    assert re.search(r'id="balance">\s*305 ', page)  # 360 − 45 − 10
    assert 'id="pending">30 min' in page
    assert "Shipping zones" in page
    assert "<polyline" in page  # the chart, drawn on the server
    assert "Bluebell" not in page
    staff_page = site.staff().get("/staff/review").text
    assert "<script>alert" not in staff_page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Checkout" in staff_page


def test_csv_download_neutralises_formulas(site: Site) -> None:
    response = site.client().get(f"/r/{site.tokens['acme']}/report.csv")
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert "'=HYPERLINK" in response.text
    assert ",=HYPERLINK" not in response.text


def test_report_pages_and_month_filter(site: Site) -> None:
    with site.session() as session:
        acme = session.exec(select(Client).where(Client.slug == "acme-shop")).one()
        for n in range(60):
            buy_block(session, STAFF_EMAIL, acme, site.settings.policy, minutes=5, ref=f"T{n}", on=date(2026, 9, 1))
        session.commit()
    client, token = site.client(), site.tokens["acme"]
    first = client.get(f"/r/{token}").text
    assert "page 1 of 2 · 63 rows" in first
    assert "ref T59<" in first  # newest first
    assert "ref T0<" not in first
    second = client.get(f"/r/{token}?page=2").text
    assert "ref T0<" in second
    october = client.get(f"/r/{token}?month=2026-10").text
    assert "Shipping zones" in october
    assert "ref T1" not in october
    assert "page 1 of" not in october
    assert "2026-09" in october  # the month list offers every month with entries


def test_staff_approval_posts_the_same_entry_as_the_command_line(site: Site) -> None:
    staff = site.staff()
    pending = site.ids["pending"]
    response = staff.post(
        f"/staff/review/{pending}",
        data={"action": "approve", "minutes": "25", "csrf": csrf_of(staff, "/staff/review"), "reason": "short"},
    )
    assert response.status_code == 200
    assert f"approved proposal {pending}" in response.text
    with site.session() as session:
        entry = session.exec(select(LedgerEntry).where(LedgerEntry.proposal_id == pending)).one()
        assert (entry.minutes, entry.idempotency_key, entry.actor) == (-25, f"proposal:{pending}", STAFF_EMAIL)
        audit = session.exec(select(AuditEvent).where(AuditEvent.target == f"proposal:{pending}")).one()
        assert audit.actor == STAFF_EMAIL
        acme = session.exec(select(Client).where(Client.slug == "acme-shop")).one()
        assert balance(session, acme).balance_minutes == 280
    again = staff.post(f"/staff/review/{pending}", data={"action": "approve", "csrf": csrf_of(staff, "/staff/review")})
    assert "already approved" in again.text


def test_change_category_reject_and_bulk_approval(site: Site) -> None:
    staff = site.staff()
    csrf = csrf_of(staff, "/staff/review")
    pending, other = site.ids["pending"], site.ids["other"]
    no_reason = staff.post(f"/staff/review/{pending}", data={"action": "reject", "csrf": csrf})
    assert "a rejection needs a reason" in no_reason.text
    bad_minutes = staff.post(f"/staff/review/{pending}", data={"action": "approve", "minutes": "ten", "csrf": csrf})
    assert "minutes must be a whole number" in bad_minutes.text
    with site.session() as session:
        statuses = session.exec(select(Proposal.status).where(col(Proposal.id).in_([pending, other]))).all()
        assert set(statuses) == {ProposalStatus.PENDING.value}
    staff.post(
        f"/staff/review/{pending}",
        data={"action": "approve", "category": Category.MODULE_BUG.value, "csrf": csrf},
    )
    refused = staff.post("/staff/review/approve", data={"ids": [str(pending), str(other)], "csrf": csrf})
    assert "already approved" in refused.text
    with site.session() as session:
        assert session.get(Proposal, other).status == ProposalStatus.PENDING.value  # all or none
    done = staff.post("/staff/review/approve", data={"ids": [str(other)], "csrf": csrf})
    assert "approved 1 proposal" in done.text
    with site.session() as session:
        free = session.exec(select(LedgerEntry).where(LedgerEntry.proposal_id == pending)).one()
        assert (free.minutes, free.category) == (0, Category.MODULE_BUG.value)


def test_staff_issue_and_revoke_links_buy_blocks_decide_projects(site: Site) -> None:
    staff = site.staff()
    csrf = csrf_of(staff, "/staff/clients/acme-shop")
    issued = staff.post("/staff/clients/acme-shop/links", data={"csrf": csrf})
    url = re.search(r'id="new-link">([^<]+)<', issued.text)
    assert url is not None
    assert url.group(1).startswith("https://support.example.test/r/")
    token = token_of(url.group(1))
    assert site.client().get(f"/r/{token}").status_code == 200
    with site.session() as session:
        stored = session.exec(select(PortalLink.token_hash)).all()
        assert token not in stored
        assert all(len(h) == 64 for h in stored)
        newest = session.exec(select(PortalLink.id).order_by(col(PortalLink.id).desc())).first()
    staff.post(f"/staff/links/{newest}/revoke", data={"csrf": csrf})
    assert site.client().get(f"/r/{token}").status_code == 404

    staff.post("/staff/clients/acme-shop/blocks", data={"csrf": csrf, "minutes": "120", "ref": "INV-9"})
    staff.post(f"/staff/projects/{site.ids['project']}", data={"csrf": csrf, "action": "accept"})
    again = staff.post(f"/staff/projects/{site.ids['project']}", data={"csrf": csrf, "action": "decline"})
    assert "already accepted" in again.text
    with site.session() as session:
        acme = session.exec(select(Client).where(Client.slug == "acme-shop")).one()
        assert balance(session, acme).balance_minutes == 305 + 120


def test_unmatched_sender_is_assigned_and_remembered(site: Site) -> None:
    with site.session() as session:
        acme = session.exec(select(Client).where(Client.slug == "acme-shop")).one()
        stray = builders.proposal(session, acme, 15, subject="Hello from a new address")
        stray.client_id = None
        item = session.get(SourceItem, stray.source_item_id)
        assert item is not None
        item.client_id, item.sender = None, "new.buyer@bluebell.example"
        session.add_all([stray, item])
        session.commit()
        stray_id = stray.id
    staff = site.staff()
    page = staff.get("/staff/unmatched").text
    assert "Hello from a new address" in page
    form = {"client": "bluebell-teas", "remember": "true", "csrf": csrf_of(staff, "/staff")}
    assert staff.post(f"/staff/unmatched/{stray_id}", data=form).status_code == 200
    with site.session() as session:
        bluebell = session.exec(select(Client).where(Client.slug == "bluebell-teas")).one()
        proposal = session.get(Proposal, stray_id)
        assert proposal is not None
        assert proposal.client_id == bluebell.id
        learned = session.exec(select(ClientEmail.client_id).where(ClientEmail.address == "new.buyer@bluebell.example"))
        assert learned.all() == [bluebell.id]
    assert "Hello from a new address" not in staff.get("/staff/unmatched").text


def test_overview_flags_low_balances(site: Site) -> None:
    with site.session() as session:
        bluebell = session.exec(select(Client).where(Client.slug == "bluebell-teas")).one()
        big = builders.proposal(session, bluebell, 320, subject="Big upgrade", on=date(2026, 11, 5))
        approve(session, STAFF_EMAIL, big.id or 0, site.settings.policy)
        session.commit()
    page = site.staff().get("/staff").text
    row = page.split("/staff/clients/bluebell-teas", 1)[1].split("</tr>", 1)[0]
    assert "40 min" in row
    assert "low" in row
    acme_row = page.split("/staff/clients/acme-shop", 1)[1].split("</tr>", 1)[0]
    assert "low" not in acme_row


def test_expiry_is_checked_at_each_request(site: Site) -> None:
    with site.session() as session:
        link = session.get(PortalLink, site.ids["acme_link"])
        assert link is not None
        link.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        session.add(link)
        session.commit()
    assert site.client().get(f"/r/{site.tokens['acme']}").status_code == 404


def test_a_staff_session_ends_its_hours_after_login_however_busy(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    staff = site.staff()
    assert staff.get("/staff/review").status_code == 200
    later = time.time() + site.settings.web.session_hours * 3600 + 1
    monkeypatch.setattr(deps, "time", SimpleNamespace(time=lambda: later))
    assert staff.get("/staff/review", follow_redirects=False).status_code == 303
