"""Who may import (admins; db/roles.py) and the audit row every import leaves."""
from __future__ import annotations

from typing import Any

from db import audit
from db.models import Annotator
from db.roles import PermissionDenied, require
from db.store import Store


class ImportRefused(ValueError):
    """The acting account may not import; a usage error for the caller."""


def check_actor(session, actor_id: int | None) -> None:
    """None: a trusted caller (a benchmark, the demo set-up); else the account must be allowed to import."""
    if actor_id is None:
        return
    try:
        require(session.get(Annotator, actor_id), "import")
    except PermissionDenied as error:
        raise ImportRefused(str(error)) from None


def audit_import(store: Store, actor_id: int | None, report: Any) -> None:
    """Counts only: source paths and file names can carry patient names, so they stay out of the log."""
    with store.sessions.begin() as session:
        actor = session.get(Annotator, actor_id) if actor_id is not None else None
        audit.record(session, actor, "import", project_id=report.project_id, target_kind="project",
                     target_id=report.project_id,
                     after={"imported": report.imported, "duplicates": len(report.duplicates),
                            "rejected": len(report.rejected), "created_project": report.created_project})
