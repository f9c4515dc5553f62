"""Case leases: `next case` reserves the image for one reader, atomically, on SQLite and PostgreSQL alike.

A case has `readers_per_case` reader slots (CaseLease, primary key image + slot). Serving a case claims a slot:
a conditional UPDATE takes over an expired lease, an INSERT … ON CONFLICT DO NOTHING takes a free one, and
whoever loses the race simply tries the next case. On PostgreSQL the candidate image row is first locked
with SELECT … FOR UPDATE SKIP LOCKED, so concurrent readers pass over a case another is claiming instead of
queueing behind it; on SQLite the caller's write transaction (db.engine.write_session) serialises claims.
A saved answer turns the lease into a finished read (expires_at = None): the slot is used for good.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from db.analysis import next_to_label
from db.fast_lease import lease_best, renew_or_lease_best
from db.lease_conditions import in_use, queue_conditions
from db.models import CaseLease, Image, Project, as_utc, utcnow
from db.project_settings import effective
from db.queue_rank import published_for
from db.upsert import insert_ignore

MAX_CLAIM_TRIES = 64


@dataclass(frozen=True)
class Lease:
    image_id: int
    expires_at: datetime


def lease_length(project: Project) -> timedelta:
    return timedelta(minutes=int(effective(project)["lease_minutes"]))


def readers_per_case(project: Project) -> int:
    return int(effective(project)["readers_per_case"])


def held_lease(session: Session, project_id: int, user_id: int, now: datetime) -> CaseLease | None:
    """This reader's open lease in the project (a reload or a second tab gets the same case back)."""
    return session.scalars(select(CaseLease).where(CaseLease.project_id == project_id,
                                                   CaseLease.user_id == user_id,
                                                   CaseLease.expires_at > now)
                           .order_by(CaseLease.leased_at).limit(1)).first()


def _lock_image(session: Session, image_id: int) -> bool:
    """PostgreSQL: lock the case's row unless another transaction holds it (then pass it over)."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    query = select(Image.id).where(Image.id == image_id).with_for_update(skip_locked=True)
    return session.scalar(query) is not None


def _renew_own(session: Session, image_id: int, user_id: int, expires: datetime, now: datetime) -> bool:
    """This user's own lease on the case (expired or not) renewed; a finished read is left alone."""
    own = session.execute(update(CaseLease).where(CaseLease.image_id == image_id, CaseLease.user_id == user_id,
                                                  CaseLease.expires_at.is_not(None))
                          .values(expires_at=expires, leased_at=now).execution_options(synchronize_session=False))
    return bool(own.rowcount)


def claim(session: Session, project_id: int, image_id: int, user_id: int, readers: int, expires: datetime,
          now: datetime, renew_own: bool = True) -> bool:
    """Take a reader slot of the case for this user; False when every slot is in use (someone was faster).

    `renew_own=False` (the queue path: its query already excluded cases this user holds) saves a statement;
    an expired lease of this user is then taken over like anyone's.
    """
    if not _lock_image(session, image_id):
        return False
    if renew_own and _renew_own(session, image_id, user_id, expires, now):
        return True
    for slot in range(readers):   # a free slot first (the common case: one statement), else an expired one
        if insert_ignore(session, CaseLease, {"image_id": image_id, "slot": slot, "project_id": project_id,
                                              "user_id": user_id, "expires_at": expires, "leased_at": now}):
            return True
        taken = session.execute(update(CaseLease)
                                .where(CaseLease.image_id == image_id, CaseLease.slot == slot,
                                       CaseLease.expires_at.is_not(None), CaseLease.expires_at <= now)
                                .values(user_id=user_id, expires_at=expires, leased_at=now)
                                .execution_options(synchronize_session=False))
        if taken.rowcount:
            return True
    return False


def next_case(session: Session, project: Project, user_id: int, checkpoint_id: int | None,
              skipped_since: datetime | None = None, exclude_ids: tuple[int, ...] = (),
              now: datetime | None = None) -> Lease | None:
    """Lease the next case for this reader (renewing the one they already hold), or None when none is left.

    Call inside db.engine.write_session: the claim and the queue read must be one transaction.
    """
    now = now or utcnow()
    expires = now + lease_length(project)
    readers = readers_per_case(project)
    # published ranks: one statement leases the best case (on PostgreSQL it also renews the
    # case this reader holds); None sends the call down the general path, which decides the rare cases
    fast = not exclude_ids and published_for(session, project.id, checkpoint_id)
    on_postgresql = session.get_bind().dialect.name == "postgresql"
    if fast and on_postgresql and (image_id := renew_or_lease_best(session, project.id, user_id, readers,
                                                                   skipped_since, expires, now)):
        return Lease(image_id, expires)
    # that statement found no held lease (it would have renewed it): no need to look again
    held = None if fast and on_postgresql else held_lease(session, project.id, user_id, now)
    if held is not None and held.image_id not in exclude_ids:
        held.expires_at = expires
        session.flush()
        return Lease(held.image_id, expires)
    if held is not None:   # the reader moved past their held case (e.g. "next" after a skip): let it go
        release(session, held.image_id, user_id)
    if fast and not on_postgresql and (image_id := lease_best(session, project.id, user_id, readers, skipped_since,
                                                              expires, now)):
        return Lease(image_id, expires)
    tried = set(exclude_ids)   # the general path: double reading, cold start, an expired lease in the way
    for _ in range(MAX_CLAIM_TRIES):
        image_id = next_to_label(session, project.id, user_id, checkpoint_id, skipped_since, tuple(tried),
                                 conditions=queue_conditions(user_id, readers, now))
        if image_id is None:
            return None
        if _claim_or_let_go(session, project.id, image_id, user_id, readers, expires, now):
            return Lease(image_id, expires)
        tried.add(image_id)
    return None


def _claim_or_let_go(session: Session, project_id: int, image_id: int, user_id: int, readers: int,
                     expires: datetime, now: datetime) -> bool:
    """claim(), and on PostgreSQL a missed candidate's row lock let go at once (ROLLBACK TO SAVEPOINT releases
    it; a plain failed claim kept it until this reader's transaction ended, so a reader saving an answer on that
    case queued behind this reader's whole queue walk)."""
    if session.get_bind().dialect.name != "postgresql":
        return claim(session, project_id, image_id, user_id, readers, expires, now, renew_own=False)
    attempt = session.begin_nested()
    if claim(session, project_id, image_id, user_id, readers, expires, now, renew_own=False):
        attempt.commit()
        return True
    attempt.rollback()
    return False


def lease_case(session: Session, project: Project, image_id: int, user_id: int,
               now: datetime | None = None) -> Lease | None:
    """Lease a chosen case (opened from Uncertain/Explore or by id); None when its slots are all in use."""
    now = now or utcnow()
    expires = now + lease_length(project)
    mine = session.scalars(select(CaseLease).where(CaseLease.image_id == image_id,
                                                   CaseLease.user_id == user_id)).first()
    if mine is not None and mine.expires_at is None:
        return None   # already read by this user
    if claim(session, project.id, image_id, user_id, readers_per_case(project), expires, now):
        return Lease(image_id, expires)
    return None


def renew(session: Session, image_id: int, user_id: int, project: Project, now: datetime | None = None) -> bool:
    """Keep a case reserved while its reader has it open."""
    now = now or utcnow()
    result = session.execute(update(CaseLease).where(CaseLease.image_id == image_id, CaseLease.user_id == user_id,
                                                     CaseLease.expires_at.is_not(None))
                             .values(expires_at=now + lease_length(project))
                             .execution_options(synchronize_session=False))
    return bool(result.rowcount)


def release(session: Session, image_id: int, user_id: int) -> None:
    """Give an open lease back (skip, leaving the case); a finished read stays."""
    session.execute(delete(CaseLease).where(CaseLease.image_id == image_id, CaseLease.user_id == user_id,
                                            CaseLease.expires_at.is_not(None))
                    .execution_options(synchronize_session=False))


def release_all(session: Session, user_id: int) -> int:
    """Logout: every open lease of the user goes back to the queue."""
    result = session.execute(delete(CaseLease).where(CaseLease.user_id == user_id, CaseLease.expires_at.is_not(None))
                             .execution_options(synchronize_session=False))
    return result.rowcount or 0


def holder(session: Session, image_id: int, now: datetime | None = None) -> list[tuple[int, datetime | None]]:
    """(user id, expiry or None for a finished read) of every slot in use on the case."""
    now = now or utcnow()
    rows = session.execute(select(CaseLease.user_id, CaseLease.expires_at)
                           .where(CaseLease.image_id == image_id, in_use(now))).all()
    return [(user_id, as_utc(expires) if expires else None) for user_id, expires in rows]
