"""The `status --json` document (CONTRACTS §5): one function so CLI, app and tests agree."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.enums import JobStatus, LabelStatus, Split
from db.labels import status_counts
from db.models import (
    Checkpoint,
    Embedding,
    Image,
    Job,
    Prediction,
    Project,
    Projection,
    RelationEdge,
    UncertaintyScore,
    Worker,
)


def stale_seconds() -> float:
    import os

    return float(os.environ.get("MEDSSL_STALE_SECONDS", "30"))


def alive_workers(session: Session) -> int:
    cutoff = datetime.now(timezone.utc) - timedelta(seconds=stale_seconds())
    return session.scalar(select(func.count()).select_from(Worker)
                          .where(Worker.stopped_at.is_(None), Worker.heartbeat_at >= cutoff)) or 0


def _count(session: Session, model, checkpoint_id: int) -> int:
    return session.scalar(select(func.count()).select_from(model).where(model.checkpoint_id == checkpoint_id)) or 0


def checkpoint_summary(session: Session, project_id: int) -> dict[str, Any]:
    count = session.scalar(select(func.count()).select_from(Checkpoint)
                           .where(Checkpoint.project_id == project_id)) or 0
    active = session.scalars(select(Checkpoint).where(Checkpoint.project_id == project_id,
                                                      Checkpoint.is_active.is_(True))).first()
    if active is None:
        return {"count": count, "active": None}
    rows = {"predictions": _count(session, Prediction, active.id),
            "uncertainty": _count(session, UncertaintyScore, active.id),
            "embeddings": _count(session, Embedding, active.id),
            "projections": _count(session, Projection, active.id),
            "relation_edges": _count(session, RelationEdge, active.id)}
    return {"count": count, "active": {"id": active.id, "method": active.method, "metrics": active.metrics,
                                       "labels_used": active.labels_used, "rows": rows,
                                       "shadow": shadow_comparison(session, active)}}


SHADOW_KEYS = ("checkpoint_id", "metric", "value", "delta", "ci95")


def comparison_owner(session: Session, checkpoint: Checkpoint) -> Checkpoint:
    """The checkpoint whose metrics hold the SSL-vs-shadow record for this one: itself, or, for a shadow that
    won activation, the SSL checkpoint it beat (`shadow_of`)."""
    metrics = checkpoint.metrics or {}
    if metrics.get("shadow") is None and metrics.get("shadow_of") is not None:
        other = session.get(Checkpoint, metrics["shadow_of"])
        if other is not None:
            return other
    return checkpoint


def shadow_comparison(session: Session, checkpoint: Checkpoint) -> dict[str, Any] | None:
    """The SSL-vs-supervised-shadow record behind this checkpoint (issue 16 §4), or None.

    `value` is the shadow's val metric, `delta` = SSL minus shadow.
    """
    record = (comparison_owner(session, checkpoint).metrics or {}).get("shadow")
    if not record:
        return None
    return {**{k: record.get(k) for k in SHADOW_KEYS}, "ssl_value": record.get("ssl_value"),
            "n_val": record.get("n_val"), "method": record.get("method")}


def project_status(session: Session, project: Project) -> dict[str, Any]:
    counts = status_counts(session, project.id)
    images = sum(counts.values())
    labeled = counts[LabelStatus.LABELED.value]
    excluded = counts[LabelStatus.EXCLUDED.value]
    split_rows = session.execute(
        select(Image.split, Image.label_status, func.count()).where(Image.project_id == project.id)
        .group_by(Image.split, Image.label_status)).all()
    splits = {s.value: {"images": 0, "labeled": 0} for s in Split}
    for split, status, n in split_rows:
        entry = splits.setdefault(split, {"images": 0, "labeled": 0})
        entry["images"] += n
        if status == LabelStatus.LABELED.value:
            entry["labeled"] += n
    job_rows = session.execute(select(Job.status, func.count()).where(Job.project_id == project.id)
                               .group_by(Job.status)).all()
    jobs = {s.value: 0 for s in JobStatus}
    jobs.update({status: n for status, n in job_rows})
    return {
        "project": project.name, "task": project.task, "classes": list(project.classes),
        "image_size": project.image_size,
        "images": images, "labeled": labeled, "unlabeled": images - labeled - excluded,
        "uncertain": counts[LabelStatus.UNCERTAIN.value], "excluded": excluded,
        "review": counts[LabelStatus.REVIEW.value],
        "splits": splits, "jobs": jobs, "checkpoints": checkpoint_summary(session, project.id),
        "workers": {"alive": alive_workers(session)},
        "agreement": _agreement(session, project),
    }


def _agreement(session: Session, project: Project) -> dict[str, Any] | None:
    """Reader agreement (kappa) once anyone double-read; None before."""
    from db.agreement import project_agreement

    return project_agreement(session, project)
