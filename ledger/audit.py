"""The audit trail: one row per staff action, written in the action's own transaction."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session

from ledger.models import AuditEvent


def record(session: Session, actor: str, action: str, target: str, **detail: Any) -> None:
    """Note that `actor` did `action` to `target` (e.g. `proposal:7`), with the details."""
    session.add(
        AuditEvent(actor=actor, action=action, target=target, detail=json.dumps(detail, sort_keys=True, default=str))
    )
