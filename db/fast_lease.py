"""The one-statement lease on published queue ranks (db/queue_rank.py), built once per dialect.

db/leases.py's general path reads the queue, then claims the case (lock, insert, savepoint on PostgreSQL): five
or more round trips. Here one INSERT … SELECT … ON CONFLICT DO NOTHING finds and leases the best case. On
PostgreSQL the candidate's image row is locked FOR UPDATE SKIP LOCKED inside the statement, so a case another
reader is leasing or answering right now is passed over, not waited for, and the ON CONFLICT never meets
another transaction's uncommitted lease (it would wait on it); the same statement also renews the case this
reader already holds (a reload, a second tab), which saves one more round trip. Any other outcome (an expired
lease on the best case, nothing left) returns None and the general path decides.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import DateTime, Integer, bindparam, exists, func, literal, select, true, tuple_, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import cast
from sqlalchemy.types import Text

from db.analysis import best_ranked_query
from db.lease_conditions import queue_conditions
from db.models import CaseLease, Image, Project

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)   # "skipped since" when the caller gives none
_BUILT: dict[str, Any] = {}   # statement per kind and dialect (building one costs ~0.5 ms a call)
_MOMENT = DateTime(timezone=True)


def _params() -> dict[str, Any]:
    return {"user": bindparam("user_id", type_=Integer), "project": bindparam("project_id", type_=Integer),
            "now": bindparam("now", type_=_MOMENT), "expires": bindparam("expires", type_=_MOMENT),
            "since": bindparam("since", type_=_MOMENT)}


def _unchanged_project(p: dict[str, Any]):
    """True while the project still publishes `checkpoint`'s ranks under the settings text the caller read
    (db/lease_shortcut.py leases without reading the project row first; a change sends it down the long path)."""
    p = {**p, "checkpoint": bindparam("checkpoint_id", type_=Integer), "settings": bindparam("settings_text")}
    return exists(select(Project.id).where(Project.id == p["project"], Project.queue_checkpoint_id == p["checkpoint"],
                                           cast(Project.settings, Text) == p["settings"]))


def _insert_best(dialect: str, p: dict[str, Any], readers: int, unless=None, guard=None):
    """INSERT of a lease on the best ranked case with a reader slot free for this reader (optionally: unless
    `unless` has rows). The slot is the number of slot rows the case has (slots fill from 0); when that slot
    is taken after all (an expired or released slot in between, a read committed since the snapshot) the
    ON CONFLICT leaves it and the general path decides."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert

    best = best_ranked_query(p["project"], p["user"], p["since"], queue_conditions(p["user"], readers, p["now"]))
    if dialect == "postgresql":
        best = best.with_for_update(skip_locked=True, of=Image.__table__)
    candidate = best.subquery()
    slot = literal(0) if readers == 1 else (select(func.count()).select_from(CaseLease)
                                            .where(CaseLease.image_id == candidate.c.id).scalar_subquery())
    rows = select(candidate.c.id, slot, p["project"], p["user"], p["expires"], p["now"])
    rows = rows.where(true() if unless is None else ~exists(select(unless.c.image_id)))  # SQLite: WHERE before ON
    rows = rows if guard is None else rows.where(guard)
    table = CaseLease.__table__
    return (insert(table).from_select(["image_id", "slot", "project_id", "user_id", "expires_at", "leased_at"],
                                      rows).on_conflict_do_nothing().returning(table.c.image_id))


def _statement(kind: str, dialect: str, readers: int):
    key = f"{kind}:{dialect}:{readers}"
    if key in _BUILT:
        return _BUILT[key]
    p = _params()
    if kind == "lease":
        statement = _insert_best(dialect, p, readers)
    else:   # renew-or-lease (PostgreSQL): data-modifying CTEs see one snapshot and run once
        guard = _unchanged_project(p) if kind == "renew_guarded" else true()
        oldest = (select(CaseLease.image_id, CaseLease.slot)
                  .where(CaseLease.project_id == p["project"], CaseLease.user_id == p["user"],
                         CaseLease.expires_at > p["now"]).order_by(CaseLease.leased_at).limit(1))
        held = (update(CaseLease).where(tuple_(CaseLease.image_id, CaseLease.slot).in_(oldest), guard)
                .values(expires_at=p["expires"]).returning(CaseLease.image_id).cte("held"))
        fresh = _insert_best(dialect, p, readers, unless=held, guard=guard).cte("fresh")
        statement = select(held.c.image_id).union_all(select(fresh.c.image_id))
    _BUILT[key] = statement
    return statement


def _values(project_id: int, user_id: int, skipped_since: datetime | None, expires: datetime,
            now: datetime) -> dict[str, Any]:
    return {"user_id": user_id, "project_id": project_id, "since": skipped_since or EPOCH, "now": now,
            "expires": expires}


def lease_best(session: Session, project_id: int, user_id: int, readers: int, skipped_since: datetime | None,
               expires: datetime, now: datetime) -> int | None:
    """Lease the best ranked case with a reader slot free for this reader; None when that slot's row exists
    (an expired or released lease) or none is left. The caller has checked that this reader holds no lease."""
    statement = _statement("lease", session.get_bind().dialect.name, readers)
    return session.execute(statement, _values(project_id, user_id, skipped_since, expires, now)).scalar()


def renew_or_lease_best(session: Session, project_id: int, user_id: int, readers: int,
                        skipped_since: datetime | None, expires: datetime, now: datetime) -> int | None:
    """PostgreSQL: the case this reader holds, renewed, or else a lease on the best ranked case; None as in
    lease_best."""
    connection = session.connection()
    sql, defaults = _compiled_renew(connection.dialect, readers)
    values = _values(project_id, user_id, skipped_since, expires, now)
    return connection.exec_driver_sql(sql, {**defaults, **values}).scalar()


def renew_or_lease_unless_changed(connection, project_id: int, user_id: int, readers: int, checkpoint_id: int,
                                  settings_text: str, skipped_since: datetime | None, expires: datetime,
                                  now: datetime) -> int | None:
    """renew_or_lease_best as one statement on its own (autocommit) connection, acting only while the project
    row still names `checkpoint_id` as its published queue and holds `settings_text` (so the readers per case
    and lease length the caller cached still hold); None otherwise, as when nothing could be leased."""
    sql, defaults = _compiled_renew(connection.dialect, readers, kind="renew_guarded")
    values = {**_values(project_id, user_id, skipped_since, expires, now), "checkpoint_id": checkpoint_id,
              "settings_text": settings_text}
    return connection.exec_driver_sql(sql, {**defaults, **values}).scalar()


def _compiled_renew(dialect, readers: int, kind: str = "renew") -> tuple[str, dict[str, Any]]:
    """The renew-or-lease statement compiled once to driver SQL: SQLAlchemy's statement cache lost the
    anonymous bind values of a data-modifying CTE on its second use ("A value is required for bind
    parameter"); the driver string with the literal values kept beside it has nothing to lose."""
    key = f"{kind}:compiled:{readers}"
    if key not in _BUILT:
        compiled = _statement(kind, "postgresql", readers).compile(dialect=dialect)
        _BUILT[key] = (str(compiled), {k: v for k, v in compiled.params.items() if v is not None})
    return _BUILT[key]
