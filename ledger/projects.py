"""Projects: proposed development whose prep time waits for the client's decision."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from ledger import audit
from ledger.errors import AlreadyExistsError, InvalidInputError
from ledger.models import Client, Project


def add_project(session: Session, actor: str, client: Client, name: str) -> Project:
    """Open a proposed project for a client; prep time can then be held against it."""
    name = name.strip()
    if not name:
        raise InvalidInputError("a project needs a name")
    exists = session.exec(select(Project.id).where(Project.client_id == client.id, Project.name == name)).first()
    if exists is not None:
        raise AlreadyExistsError(f"client {client.slug!r} already has project {exists} named {name!r}")
    assert client.id is not None
    project = Project(client_id=client.id, name=name)
    session.add(project)
    session.flush()
    audit.record(session, actor, "project.add", f"project:{project.id}", client=client.slug, name=name)
    return project


@dataclass(frozen=True)
class ProjectRow:
    id: int
    client: str
    name: str
    status: str
    decided_on: str | None


def list_projects(session: Session, client: Client | None = None) -> list[ProjectRow]:
    query = select(Project, Client.slug).join(Client, col(Client.id) == Project.client_id).order_by(col(Project.id))
    if client is not None:
        query = query.where(Project.client_id == client.id)
    return [
        ProjectRow(
            id=p.id or 0,
            client=slug,
            name=p.name,
            status=p.status,
            decided_on=p.decided_on.isoformat() if p.decided_on else None,
        )
        for p, slug in session.exec(query).all()
    ]
