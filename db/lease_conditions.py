"""Which reader slots count, and which cases a reader may be served: the SQL conditions shared by the general
lease path (db/leases.py) and the one-statement lease (db/fast_lease.py)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, or_, select

from db.models import CaseLease, Image


def in_use(now: Any):
    """A slot row that counts: a finished read, or a lease not yet expired."""
    return or_(CaseLease.expires_at.is_(None), CaseLease.expires_at > now)


def queue_conditions(user_id: Any, readers: int, now: datetime | Any) -> tuple:
    """Image conditions: this reader has no slot on it, and a slot is free for them."""
    if readers == 1:   # no slot in use at all (this reader's own included: one condition, one anti-join less)
        return (~exists().where(CaseLease.image_id == Image.id, in_use(now)),)
    mine = exists().where(CaseLease.image_id == Image.id, CaseLease.user_id == user_id, in_use(now))
    used = (select(func.count()).select_from(CaseLease)
            .where(CaseLease.image_id == Image.id, in_use(now)).scalar_subquery())
    return (~mine, used < readers)
