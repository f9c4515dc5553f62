"""Auto-retrain trigger: a project setting `auto_retrain_labels = N` enqueues a train job once N new
human labels arrived since the active checkpoint, unless a train job is already waiting or running."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.enums import JobStatus, LabelKind, LabelSource
from db.jobs import enqueue
from db.models import Checkpoint, Image, Job, Label, Project

SETTING = "auto_retrain_labels"


def labels_since_active(session: Session, project: Project) -> int:
    active = session.scalars(select(Checkpoint).where(Checkpoint.project_id == project.id,
                                                      Checkpoint.is_active.is_(True))).first()
    query = (select(func.count()).select_from(Label).join(Image, Image.id == Label.image_id)
             .where(Image.project_id == project.id, Label.source == LabelSource.HUMAN.value,
                    Label.kind == LabelKind.CLASS.value))
    if active is not None:
        query = query.where(Label.created_at > active.created_at)
    return session.scalar(query) or 0


def maybe_enqueue_retrain(session: Session) -> list[int]:
    """Called by idle workers; returns the ids of train jobs it enqueued."""
    enqueued = []
    for project in session.scalars(select(Project)):
        threshold = (project.settings or {}).get(SETTING)
        if not threshold:
            continue
        busy = session.scalar(select(func.count()).select_from(Job).where(
            Job.project_id == project.id, Job.kind == "train",
            Job.status.in_((JobStatus.QUEUED.value, JobStatus.RUNNING.value))))
        if busy or labels_since_active(session, project) < int(threshold):
            continue
        last = session.scalars(select(Job).where(Job.project_id == project.id, Job.kind == "train")
                               .order_by(Job.id.desc())).first()
        params = dict(last.params) if last is not None else {}
        params["trigger"] = f"auto: {threshold} new labels"
        enqueued.append(enqueue(session, "train", params, project_id=project.id).id)
    return enqueued
