"""Browser logins that survive a reload: a random token in a cookie, only its SHA-256 in the database.

A token is valid while its user is enabled, it was not revoked (logout, password change, disabling), it was
used within the idle limit and is younger than the absolute limit; every check is made here, server-side.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from db.models import Annotator, LoginSession, as_utc, utcnow

TOUCH_EVERY = timedelta(seconds=60)   # last_seen_at is written at most this often per session


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(session: Session, user: Annotator) -> str:
    token = secrets.token_urlsafe(32)
    session.add(LoginSession(token_hash=_digest(token), user_id=user.id))
    session.flush()
    return token


def resolve(session: Session, token: str | None, idle: timedelta, absolute: timedelta,
            now: datetime | None = None) -> Annotator | None:
    """The user a cookie token stands for, or None (and the token revoked when it has expired)."""
    if not token:
        return None
    now = now or utcnow()
    row = session.get(LoginSession, _digest(token))
    if row is None or row.revoked_at is not None:
        return None
    if now - as_utc(row.last_seen_at) > idle or now - as_utc(row.created_at) > absolute:
        row.revoked_at = now
        return None
    user = session.get(Annotator, row.user_id)
    if user is None or user.disabled or user.password_hash is None:
        return None
    if now - as_utc(row.last_seen_at) > TOUCH_EVERY:
        row.last_seen_at = now
    return user


def revoke(session: Session, token: str | None) -> None:
    if token:
        session.execute(update(LoginSession).where(LoginSession.token_hash == _digest(token),
                                                   LoginSession.revoked_at.is_(None)).values(revoked_at=utcnow()))


def revoke_all(session: Session, user_id: int) -> None:
    """Every browser of this user logs out (password change, disabled account)."""
    session.execute(update(LoginSession).where(LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None))
                    .values(revoked_at=utcnow()))
