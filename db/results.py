"""Checkpoint registry: rows pinned to label snapshots, one active per project, rollback."""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.models import Checkpoint


def add_checkpoint(session: Session, project_id: int, job_id: int | None, method: str, backbone: str | None,
                   path: str, config: dict[str, Any], metrics: dict[str, Any], labels_used: int,
                   label_hash: str, activate: bool = True) -> Checkpoint:
    checkpoint = Checkpoint(project_id=project_id, job_id=job_id, method=method, backbone=backbone, path=path,
                            config=config, metrics=metrics, labels_used=labels_used, label_hash=label_hash)
    session.add(checkpoint)
    session.flush()
    if activate:
        set_active(session, checkpoint.id)
    return checkpoint


def checkpoint_of_job(session: Session, job_id: int, method: str | None = None) -> Checkpoint | None:
    """The checkpoint a train job already registered (a retry after a kill must not register it twice).

    A semi-supervised job registers two (its supervised shadow first): `method` picks one.
    """
    query = select(Checkpoint).where(Checkpoint.job_id == job_id)
    if method is not None:
        query = query.where(Checkpoint.method == method)
    return session.scalars(query.order_by(Checkpoint.id)).first()


def find_shadow(session: Session, project_id: int, label_hash: str, method: str,
                config: dict[str, Any]) -> Checkpoint | None:
    """The newest checkpoint of exactly this labeled-only configuration on this label snapshot, if any.

    Reusing it keeps "same labels, same settings" literal: any change to labels or settings trains a new one.
    """
    config = json.loads(json.dumps(config))  # stored JSON has lists where the config has tuples
    rows = session.scalars(select(Checkpoint).where(Checkpoint.project_id == project_id,
                                                    Checkpoint.label_hash == label_hash,
                                                    Checkpoint.method == method)
                           .order_by(Checkpoint.id.desc()))
    return next((row for row in rows if row.config == config), None)


def set_active(session: Session, checkpoint_id: int, actor: Any = None) -> Checkpoint:
    """Exactly one active checkpoint per project (rollback = activate an older one); a user's rollback is
    role-checked, every activation audited (a job's own activation has no actor)."""
    from db import audit
    from db.roles import require

    checkpoint = session.get(Checkpoint, checkpoint_id)
    if checkpoint is None:
        raise ValueError(f"no checkpoint {checkpoint_id}")
    if actor is not None:
        require(actor, "rollback")
    before = active_checkpoint_id(session, checkpoint.project_id)
    audit.record(session, actor, "checkpoint.activate", project_id=checkpoint.project_id,
                 target_kind="checkpoint", target_id=checkpoint_id, before={"active": before},
                 after={"active": checkpoint_id})
    session.execute(update(Checkpoint).where(Checkpoint.project_id == checkpoint.project_id)
                    .values(is_active=Checkpoint.id == checkpoint_id))
    session.refresh(checkpoint)
    return checkpoint


def active_checkpoint_id(session: Session, project_id: int) -> int | None:
    return session.scalar(select(Checkpoint.id).where(Checkpoint.project_id == project_id,
                                                      Checkpoint.is_active.is_(True)))


def list_checkpoints(session: Session, project_id: int) -> list[Checkpoint]:
    return list(session.scalars(select(Checkpoint).where(Checkpoint.project_id == project_id)
                                .order_by(Checkpoint.id)))


def flipped_predictions(session: Session, first_id: int, second_id: int) -> list[tuple[int, Any, Any]]:
    """(image id, prediction under first, under second) for images whose predicted class changed.

    Compared in SQL as the stored JSON text (one writer: equal predictions are equal texts), so only the
    flipped rows are read and decoded; reading all 100,000 pairs took most of the Models page's first visit."""
    from sqlalchemy import Text, cast
    from sqlalchemy.orm import aliased

    from db.models import Prediction

    a, b = aliased(Prediction), aliased(Prediction)
    rows = session.execute(select(a.image_id, a.predicted, b.predicted).join(b, b.image_id == a.image_id)
                           .where(a.checkpoint_id == first_id, b.checkpoint_id == second_id,
                                  cast(a.predicted, Text) != cast(b.predicted, Text))
                           .order_by(a.image_id)).all()
    return [(image_id, p, q) for image_id, p, q in rows if p != q]


def mark_shadow_of(session: Session, shadow_id: int, ssl_id: int) -> None:
    """Link a shadow that won activation to the SSL checkpoint holding the comparison (status shows it)."""
    shadow = session.get(Checkpoint, shadow_id)
    if shadow is not None:
        shadow.metrics = {**(shadow.metrics or {}), "shadow_of": ssl_id}
