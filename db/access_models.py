"""Tables that come with accounts: reader slots (leases), browser login sessions, and the audit log."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, utcnow


class CaseLease(Base):
    """One reader slot of a case (`readers_per_case` per image; db/leases.py): a lease while `expires_at` is
    set, a finished read once it is None."""

    __tablename__ = "case_lease"
    __table_args__ = (
        UniqueConstraint("image_id", "user_id", name="uq_case_lease_image_user"),
        Index("ix_case_lease_user_expires", "user_id", "expires_at"),
    )

    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("annotator.id"))
    expires_at: Mapped[datetime | None] = mapped_column()
    leased_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """Append-only record of every write (triggers refuse UPDATE/DELETE). No foreign keys: the log outlives a
    deleted project or image; the user's name is copied so it reads on its own."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_project_id", "project_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(Integer)
    user_name: Mapped[str | None] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(40), index=True)
    project_id: Mapped[int | None] = mapped_column(Integer)
    target_kind: Mapped[str | None] = mapped_column(String(20))
    target_id: Mapped[str | None] = mapped_column(String(64))
    before: Mapped[Any] = mapped_column(JSON, nullable=True)
    after: Mapped[Any] = mapped_column(JSON, nullable=True)


class LoginSession(Base):
    """A browser login that survives reloads: the cookie holds a random token, this row only its SHA-256."""

    __tablename__ = "login_session"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("annotator.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()
