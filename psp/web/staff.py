"""The staff pages: review queue, clients, links, blocks, projects, unmatched senders, mail health.

Every change goes through the ledger's own functions (approve, reject, buy_block, decide_project,
assign_client), in one transaction per request, with the staff member's address as the actor of
the audit trail: the web and the command line post identical entries. A refused change (a
proposal someone else decided meanwhile, a bad number) comes back as a message, and nothing of
that request is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import groupby
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session, col, select

from ingest.imap import mailbox_health
from ingest.quarantine import list_quarantine
from ledger.clients import get_client
from ledger.errors import InvalidInputError, NotFoundError
from ledger.models import Category, Client, ProjectStatus
from ledger.posting import approve, buy_block, decide_project, reject
from ledger.proposals import assign_client
from ledger.report_formats import hours
from ledger.reports import balance
from psp import db
from psp.commands.common import parse_day
from psp.errors import PspError
from psp.web import queries
from psp.web.deps import ReadDb, Staff, StaffUser, State, flash, redirect, render_staff
from psp.web.links import issue_link, list_links, revoke_link
from psp.web.security import check_csrf

router = APIRouter(prefix="/staff")
CATEGORIES = [c.value for c in Category if c is not Category.IGNORED]
Csrf = Annotated[str, Form()]


def _back(path: str, fallback: str) -> str:
    """Where to return after a form: only a path of our staff pages (no open redirect)."""
    return path if path.startswith("/staff") and not path.startswith("//") and "\\" not in path else fallback


def _optional_int(text: str, what: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise InvalidInputError(f"{what} must be a whole number, got {text!r}") from None


@contextmanager
def _change(request: Request, state: State, csrf: str) -> Iterator[Session]:
    """One transaction for a staff change; a refused change becomes a message and writes nothing."""
    check_csrf(request, csrf)
    try:
        with db.transaction(state.engine) as session:
            yield session
    except PspError as exc:
        flash(request, str(exc), "error")


def _today(state: State) -> date:
    return datetime.now(state.settings.policy.zone).date()


def _low_threshold(state: State) -> int:
    return max(state.settings.policy.renewal_thresholds, default=0)


@router.get("", response_class=HTMLResponse)
def overview(request: Request, staff: Staff, state: State, session: ReadDb) -> HTMLResponse:
    return render_staff(
        request,
        staff,
        "staff/overview.html",
        {"clients": queries.client_overview(session), "low": _low_threshold(state), "hours": hours},
    )


@dataclass
class ClientGroup:
    """The review queue's grouping: a client, then its threads, each with its pending items."""

    slug: str
    name: str
    threads: list[list[queries.QueueItem]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(len(t) for t in self.threads)


def _group(items: list[queries.QueueItem]) -> list[ClientGroup]:
    groups = []
    for (slug, name), of_client in groupby(items, key=lambda i: (i.client or "", i.client_name or "")):
        group = ClientGroup(slug, name)
        group.threads = [list(thread) for _, thread in groupby(of_client, key=lambda i: i.thread_key)]
        groups.append(group)
    return groups


@router.get("/review", response_class=HTMLResponse)
def review(
    request: Request,
    staff: Staff,
    state: State,
    session: ReadDb,
    client: Annotated[str | None, Query(max_length=80)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    try:
        chosen = get_client(session, client) if client else None
    except NotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND) from None
    queue = queries.pending_queue(session, chosen, page=page)
    projects: dict[str, list[queries.ProjectChoice]] = {}
    for project in queries.projects(session, open_only=True):
        projects.setdefault(project.client, []).append(project)
    return render_staff(
        request,
        staff,
        "staff/review.html",
        {
            "groups": _group(queue.items),
            "queue": queue,
            "client": client or "",
            "projects": projects,
            "categories": CATEGORIES,
            "zone": state.settings.policy.zone,
            "back": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        },
    )


@router.post("/review/approve")
def review_approve_selected(
    request: Request,
    staff: Staff,
    state: State,
    csrf: Csrf = "",
    ids: Annotated[list[int] | None, Form()] = None,
    back: Annotated[str, Form()] = "",
) -> Response:
    """Approve the ticked proposals as proposed: all together, or none if one is refused."""
    if not ids:
        check_csrf(request, csrf)
        flash(request, "nothing selected", "error")
        return redirect(_back(back, "/staff/review"))
    with _change(request, state, csrf) as session:
        for proposal_id in ids:
            approve(session, staff.email, proposal_id, state.settings.policy)
        flash(request, f"approved {len(ids)} proposal{'s' if len(ids) != 1 else ''}")
    return redirect(_back(back, "/staff/review"))


@router.post("/review/{proposal_id}")
def review_decide(
    request: Request,
    staff: Staff,
    state: State,
    proposal_id: int,
    action: Annotated[str, Form(pattern="^(approve|reject)$")],
    csrf: Csrf = "",
    minutes: Annotated[str, Form(max_length=10)] = "",
    category: Annotated[str, Form(max_length=16)] = "",
    project: Annotated[str, Form(max_length=10)] = "",
    reason: Annotated[str, Form(max_length=1000)] = "",
    back: Annotated[str, Form()] = "",
) -> Response:
    with _change(request, state, csrf) as session:
        if action == "reject":
            reject(session, staff.email, proposal_id, reason)
            flash(request, f"rejected proposal {proposal_id}")
        else:
            if category and category not in CATEGORIES:
                raise InvalidInputError(f"unknown category {category!r}")
            result = approve(
                session,
                staff.email,
                proposal_id,
                state.settings.policy,
                minutes=_optional_int(minutes, "minutes"),
                category=Category(category) if category else None,
                project_id=_optional_int(project, "project"),
                note=reason.strip() or None,
            )
            flash(request, f"approved proposal {proposal_id}: {result.decision.reason}")
    return redirect(_back(back, "/staff/review"))


@router.get("/clients/{slug}", response_class=HTMLResponse)
def client_page(request: Request, staff: Staff, state: State, session: ReadDb, slug: str) -> HTMLResponse:
    return _client_page(request, staff, state, session, slug, new_link=None)


def _client_page(
    request: Request, staff: StaffUser, state: State, session: Session, slug: str, new_link: str | None
) -> HTMLResponse:
    try:
        client = get_client(session, slug)
    except NotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND) from None
    return render_staff(
        request,
        staff,
        "staff/client.html",
        {
            "client": client,
            "summary": balance(session, client),
            "links": list_links(session, client),
            "projects": queries.projects(session, client=client),
            "new_link": new_link,
            "today": _today(state),
            "block_minutes": state.settings.policy.block_minutes,
            "hours": hours,
        },
    )


@router.post("/clients/{slug}/links", response_class=HTMLResponse)
def client_issue_link(request: Request, staff: Staff, state: State, slug: str, csrf: Csrf = "") -> Response:
    """Issue a report link and show it once: only its hash is kept."""
    url = None
    with _change(request, state, csrf) as session:
        url = issue_link(session, staff.email, get_client(session, slug), state.settings.web).url
    with Session(state.read_engine) as session:
        return _client_page(request, staff, state, session, slug, new_link=url)


@router.post("/links/{link_id}/revoke")
def link_revoke(request: Request, staff: Staff, state: State, link_id: int, csrf: Csrf = "") -> Response:
    back = "/staff"
    with _change(request, state, csrf) as session:
        link = revoke_link(session, staff.email, link_id)
        client = session.get(Client, link.client_id)
        assert client is not None
        back = f"/staff/clients/{client.slug}"
        flash(request, f"link {link_id} revoked")
    return redirect(back)


@router.post("/clients/{slug}/blocks")
def client_buy_block(
    request: Request,
    staff: Staff,
    state: State,
    slug: str,
    csrf: Csrf = "",
    minutes: Annotated[str, Form(max_length=10)] = "",
    ref: Annotated[str, Form(max_length=200)] = "",
    on: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    with _change(request, state, csrf) as session:
        day = parse_day(on or None) or _today(state)
        block_minutes = _optional_int(minutes, "minutes") or state.settings.policy.block_minutes
        client = get_client(session, slug)
        buy_block(session, staff.email, client, state.settings.policy, minutes=block_minutes, ref=ref or None, on=day)
        flash(request, f"block of {block_minutes} min added for {client.name}")
    return redirect(f"/staff/clients/{slug}")


@router.get("/projects", response_class=HTMLResponse)
def projects_page(request: Request, staff: Staff, session: ReadDb) -> HTMLResponse:
    return render_staff(request, staff, "staff/projects.html", {"projects": queries.projects(session)})


@router.post("/projects/{project_id}")
def project_decide(
    request: Request,
    staff: Staff,
    state: State,
    project_id: int,
    action: Annotated[str, Form(pattern="^(accept|decline)$")],
    csrf: Csrf = "",
    back: Annotated[str, Form()] = "",
) -> Response:
    decision = ProjectStatus.ACCEPTED if action == "accept" else ProjectStatus.DECLINED
    with _change(request, state, csrf) as session:
        entries = decide_project(session, staff.email, project_id, decision, state.settings.policy, _today(state))
        charged = -sum(e.minutes for e in entries)
        flash(request, f"project {project_id} {decision.value}: {len(entries)} prep item(s), {charged} min charged")
    return redirect(_back(back, "/staff/projects"))


@router.get("/unmatched", response_class=HTMLResponse)
def unmatched(request: Request, staff: Staff, state: State, session: ReadDb) -> HTMLResponse:
    return render_staff(
        request,
        staff,
        "staff/unmatched.html",
        {
            "queue": queries.pending_queue(session, unmatched=True),
            "clients": session.exec(select(Client).order_by(col(Client.slug))).all(),
            "zone": state.settings.policy.zone,
        },
    )


@router.post("/unmatched/{proposal_id}")
def unmatched_assign(
    request: Request,
    staff: Staff,
    state: State,
    proposal_id: int,
    client: Annotated[str, Form(max_length=80)],
    csrf: Csrf = "",
    remember: Annotated[bool, Form()] = False,
) -> Response:
    with _change(request, state, csrf) as session:
        assign_client(session, staff.email, proposal_id, get_client(session, client), remember=remember)
        flash(request, f"proposal {proposal_id} assigned to {client}" + (" (address remembered)" if remember else ""))
    return redirect("/staff/unmatched")


@router.get("/mail", response_class=HTMLResponse)
def mail_health(request: Request, staff: Staff, session: ReadDb) -> HTMLResponse:
    return render_staff(
        request,
        staff,
        "staff/mail.html",
        {"folders": mailbox_health(session), "quarantine": list_quarantine(session)},
    )
