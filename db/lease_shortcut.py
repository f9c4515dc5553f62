"""Next case in one round trip on PostgreSQL: what the Label page, `queue next` and the reader benchmark call.

db.leases.next_case runs inside a write transaction: BEGIN, the project row (its settings say how many readers
a case gets and how long a lease lasts), the one-statement lease of db/fast_lease.py, COMMIT — four round
trips, each of which, in the app server's shape (every browser session a thread of one process), waits for
the GIL again under load. The lease statement is atomic on its own, so here it runs in autocommit with the
project's settings remembered from the last long-path call in this process; the statement itself checks
that the project row still holds those settings and still publishes this checkpoint's queue, and acts on
nothing otherwise. Whatever it cannot decide (nothing cached yet, settings changed, an expired lease in the
way, nothing left, SQLite) goes down the long path, which decides as before and refreshes the cache.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Text, cast, select
from sqlalchemy.orm import Session, sessionmaker

from db.engine import write_session
from db.fast_lease import renew_or_lease_unless_changed
from db.leases import Lease, lease_length, next_case, readers_per_case
from db.models import Project, utcnow


@dataclass(frozen=True)
class _Facts:
    settings_text: str
    readers: int
    lease: timedelta


_FACTS: dict[tuple[int, int], _Facts] = {}   # (engine id, project id) -> what the last long path read
_LOCK = threading.Lock()


def serve_next(sessions: sessionmaker[Session], project_id: int, user_id: int, checkpoint_id: int | None,
               skipped_since: datetime | None = None, now: datetime | None = None) -> Lease | None:
    """The case this reader holds (renewed) or a lease on the next one; None when nothing is left for them."""
    now = now or utcnow()
    bind = sessions.kw["bind"]
    key = (id(bind), project_id)
    facts = _FACTS.get(key)
    if bind.dialect.name == "postgresql" and checkpoint_id is not None and facts is not None:
        expires = now + facts.lease
        with bind.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            image_id = renew_or_lease_unless_changed(connection, project_id, user_id, facts.readers, checkpoint_id,
                                                     facts.settings_text, skipped_since, expires, now)
        if image_id is not None:
            return Lease(image_id, expires)
    with write_session(sessions) as session:
        project = session.get(Project, project_id)
        if project is None:
            return None
        lease = next_case(session, project, user_id, checkpoint_id, skipped_since, now=now)
        if bind.dialect.name == "postgresql":
            _remember(session, key, project)
        return lease


def _remember(session: Session, key: tuple[int, int], project: Project) -> None:
    """The project's settings as the database holds them (text, compared by the statement) with what they
    decide; one more statement on the long path only."""
    text = session.scalar(select(cast(Project.settings, Text)).where(Project.id == project.id))
    if text is None:
        return
    with _LOCK:
        _FACTS[key] = _Facts(text, readers_per_case(project), lease_length(project))


def forget() -> None:
    """Tests: start from an empty cache."""
    with _LOCK:
        _FACTS.clear()
