"""Append-only audit log of every write: who, when, what, target, before/after where it applies.

Rows are only ever inserted (database triggers refuse UPDATE/DELETE, see migration 0002); nothing in the
app or CLI offers to change them.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from db.models import Annotator, AuditEvent, utcnow

FIELDS = ("id", "at", "user_name", "action", "project_id", "target_kind", "target_id", "before", "after")


def _row(actor: Annotator | None, action: str, project_id: int | None, target_kind: str | None,
         target_id: Any, before: Any, after: Any, at: datetime) -> dict[str, Any]:
    return {"at": at, "user_id": actor.id if actor else None, "user_name": actor.name if actor else None,
            "action": action, "project_id": project_id, "target_kind": target_kind,
            "target_id": None if target_id is None else str(target_id), "before": before, "after": after}


def record(session: Session, actor: Annotator | None, action: str, *, project_id: int | None = None,
           target_kind: str | None = None, target_id: Any = None, before: Any = None, after: Any = None) -> None:
    """One event in the caller's transaction: it lands exactly when the write it describes lands."""
    session.execute(insert(AuditEvent), [_row(actor, action, project_id, target_kind, target_id, before, after,
                                              utcnow())])


def record_many(session: Session, actor: Annotator | None, action: str, project_id: int | None,
                target_kind: str, targets: Iterable[tuple[Any, Any, Any]]) -> None:
    """Many events of one kind (bulk label, import): (target_id, before, after) each, one INSERT."""
    now = utcnow()
    rows = [_row(actor, action, project_id, target_kind, t, b, a, now) for t, b, a in targets]
    if rows:
        session.execute(insert(AuditEvent), rows)


def events(session: Session, *, project_id: int | None = None, user_name: str | None = None,
           action: str | None = None, since: datetime | None = None, limit: int | None = None) -> list[AuditEvent]:
    """Newest first, filtered; `action` matches a prefix ("label" finds label.add, label.retract…)."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc())
    if project_id is not None:
        query = query.where(AuditEvent.project_id == project_id)
    if user_name:
        query = query.where(AuditEvent.user_name == user_name)
    if action:
        query = query.where(AuditEvent.action.startswith(action, autoescape=True))
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if limit:
        query = query.limit(limit)
    return list(session.scalars(query))


def as_dict(event: AuditEvent) -> dict[str, Any]:
    return {"id": event.id, "at": event.at.isoformat(), "user_name": event.user_name, "action": event.action,
            "project_id": event.project_id, "target_kind": event.target_kind, "target_id": event.target_id,
            "before": event.before, "after": event.after}
