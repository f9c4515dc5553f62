"""Publish a checkpoint's acquisition ranks onto the image rows, so the labeling queue walks one partial index.

The queue's order lives in the analysis rows (UncertaintyScore.acquisition_rank). Walking them in rank order
steps over every case labeled since that analysis: on 100,000 images with 20 readers it grew to ~5 ms per
"next case" on PostgreSQL (issue 14). `Image.queue_rank` is a copy of those ranks, indexed only while the case
waits for a label (models.ix_image_queue), so a labeled case leaves the walk by itself and a retracted one comes
back with its rank.

The copy is written in short transactions of BATCH rows: one UPDATE of every image row would hold every row
lock of the project at once, and readers (who lock the case they lease with SKIP LOCKED) would find the queue
empty until it committed. On PostgreSQL the table is vacuumed after the copy, so autovacuum does not
start on it later, while readers work. While the copy is written `Project.queue_checkpoint_id` is NULL and the queue reads
the analysis rows as before; the queue uses the copy only when it names the active checkpoint.
"""
from __future__ import annotations

import logging
import threading

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from db.engine import refresh_statistics, write_session
from db.models import Image, Project, UncertaintyScore
from db.results import active_checkpoint_id

BATCH = 2000
log = logging.getLogger(__name__)


def _lock_project(session: Session, project_id: int) -> Project | None:
    return session.scalars(select(Project).where(Project.id == project_id).with_for_update()).first()


def publish(sessions: sessionmaker[Session], project_id: int, batch: int = BATCH) -> int | None:
    """Copy the active checkpoint's ranks to its project's images; returns that checkpoint id (None: no
    active checkpoint, or the active one changed while copying, and the next publish owns the copy).

    Call after the analysis or the activation commits. Each batch re-checks, under the project's row lock,
    that the checkpoint is still active, so a rollback in the middle never leaves ranks of two checkpoints
    under one name.
    """
    with write_session(sessions) as session:
        project = _lock_project(session, project_id)
        checkpoint_id = active_checkpoint_id(session, project_id) if project else None
        if project is None or checkpoint_id is None:
            return None
        project.queue_checkpoint_id = None   # a re-analysis of the same checkpoint may rank anew
        ids = list(session.scalars(select(Image.id).where(Image.project_id == project_id).order_by(Image.id)))
    rank = (select(UncertaintyScore.acquisition_rank)
            .where(UncertaintyScore.checkpoint_id == checkpoint_id, UncertaintyScore.image_id == Image.id)
            .scalar_subquery())
    for start in range(0, len(ids), batch):
        with write_session(sessions) as session:
            _lock_project(session, project_id)
            if active_checkpoint_id(session, project_id) != checkpoint_id:
                return None
            session.execute(update(Image).where(Image.project_id == project_id, Image.id >= ids[start],
                                                Image.id <= ids[min(start + batch, len(ids)) - 1])
                            .values(queue_rank=rank).execution_options(synchronize_session=False))
    with write_session(sessions) as session:
        project = _lock_project(session, project_id)
        if project is None or active_checkpoint_id(session, project_id) != checkpoint_id:
            return None
        project.queue_checkpoint_id = checkpoint_id
    refresh_statistics(sessions.kw["bind"], "image", vacuum=True)   # PostgreSQL: the rewrite's dead rows
    return checkpoint_id


def publish_in_background(sessions: sessionmaker[Session], project_id: int) -> threading.Thread:
    """publish() on a daemon thread, for the app: at 100,000 images the copy takes seconds, which a click on
    "Set active" should not wait for. Until it lands the queue serves the same order from the analysis rows
    (published_for is false meanwhile), so nothing is served out of order, only a little slower."""
    def run() -> None:
        try:
            publish(sessions, project_id)
        except Exception:   # a thread's exception is otherwise lost; the next publish redoes it
            log.exception("publishing queue ranks of project %s failed", project_id)

    thread = threading.Thread(target=run, name=f"publish-queue-{project_id}", daemon=True)
    thread.start()
    return thread


def published_for(session: Session, project_id: int, checkpoint_id: int | None) -> bool:
    """Whether Image.queue_rank holds `checkpoint_id`'s ranks (the project row is usually in the session)."""
    project = session.get(Project, project_id)
    return checkpoint_id is not None and project is not None and project.queue_checkpoint_id == checkpoint_id
