"""Monthly statements: gather, check, render, then write out or send each one once.

The ledger is read in one short transaction and the documents are rendered outside it, so a run
over a thousand clients never holds the database. Sending records the frozen snapshot and its
pending mail together; the outbox then delivers, and a mail the relay did not accept stays pending
for the next run. A client's month is sent once: a second run says so, unless asked to resend,
which adds the next version and leaves the first untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from ledger.statements import StatementData, StatementMonth, gather_statements
from notify.mailer import Attachment, Composed
from notify.models import Statement
from notify.outbox import record
from notify.statement_documents import StatementDocuments, render_documents
from psp import db
from psp.config import Settings


@dataclass(frozen=True)
class Rendered:
    data: StatementData
    documents: StatementDocuments

    @property
    def stem(self) -> str:
        return f"statement-{self.data.slug}-{self.data.month.label}"


@dataclass
class Outcome:
    """What happened to one client's statement in this run, for the command's report.

    Attributes:
      status: rendered (nothing sent), queued (recorded, mail pending), sent, failed, already sent,
        or no address.
    """

    client: str
    month: str
    opening: int
    charged: int
    credited: int
    closing: int
    status: str
    version: int | None = None
    mail_id: int | None = None
    detail: str = ""


def gather(engine: Engine, settings: Settings, month: StatementMonth, client: str | None) -> list[StatementData]:
    """Every statement of the month, read and reconciled in one transaction."""
    with db.transaction(engine) as session:
        return gather_statements(session, month, settings.policy, client)


def render_all(
    statements: Sequence[StatementData], settings: Settings, advance: Callable[[], None] = lambda: None
) -> list[Rendered]:
    rendered = []
    for data in statements:
        rendered.append(Rendered(data, render_documents(data, settings.policy, settings.smtp.sender)))
        advance()
    return rendered


def outcome(
    item: Rendered, status: str, *, version: int | None = None, mail_id: int | None = None, detail: str = ""
) -> Outcome:
    data = item.data
    return Outcome(
        data.slug,
        data.month.label,
        data.opening,
        data.charged_minutes,
        data.credited_minutes,
        data.closing,
        status,
        version,
        mail_id,
        detail,
    )


def write_files(folder: Path, rendered: Sequence[Rendered]) -> None:
    """Each statement as `statement-<client>-<month>.{txt,html,csv,pdf}` in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for item in rendered:
        docs = item.documents
        (folder / f"{item.stem}.txt").write_text(docs.text, encoding="utf-8")
        (folder / f"{item.stem}.html").write_text(docs.html, encoding="utf-8")
        (folder / f"{item.stem}.csv").write_text(docs.csv, encoding="utf-8", newline="")
        (folder / f"{item.stem}.pdf").write_bytes(docs.pdf)


def record_statements(
    session: Session, settings: Settings, rendered: Sequence[Rendered], *, resend: bool = False
) -> list[Outcome]:
    """Freeze each statement with its pending mail, unless its month was sent before (and no resend)."""
    if not rendered:
        return []
    month = rendered[0].data.month.label
    sent_versions = dict(
        session.execute(
            sa.select(col(Statement.client_id), sa.func.max(Statement.version))
            .where(col(Statement.month) == month, col(Statement.client_id).in_([r.data.client_id for r in rendered]))
            .group_by(col(Statement.client_id))
        ).all()
    )
    outcomes = []
    for item in rendered:
        data, docs = item.data, item.documents
        previous = sent_versions.get(data.client_id, 0)
        if previous and not resend:
            outcomes.append(outcome(item, "already sent", version=previous, detail="use --resend to send it again"))
            continue
        if not data.contacts:
            outcomes.append(outcome(item, "no address", detail="the client has no billing address"))
            continue
        mail_id = record(session, _mail(item), settings, client_id=data.client_id)
        session.add(
            Statement(
                client_id=data.client_id,
                month=month,
                version=previous + 1,
                opening_minutes=data.opening,
                closing_minutes=data.closing,
                content_hash=docs.content_hash,
                text_body=docs.text,
                html_body=docs.html,
                csv_attachment=docs.csv,
                pdf_attachment=docs.pdf,
                outgoing_mail_id=mail_id,
            )
        )
        outcomes.append(outcome(item, "queued", version=previous + 1, mail_id=mail_id))
    return outcomes


def _mail(item: Rendered) -> Composed:
    docs = item.documents
    return Composed(
        kind="statement",
        to=item.data.contacts,
        cc=(),
        subject=docs.subject,
        text=docs.text,
        html=docs.html,
        attachments=(
            Attachment(f"{item.stem}.csv", "text/csv", docs.csv.encode()),
            Attachment(f"{item.stem}.pdf", "application/pdf", docs.pdf),
        ),
    )
