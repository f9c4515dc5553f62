"""Per-checkpoint analysis rows (predictions, uncertainty, embeddings, 2-D map, relation edges) and the
"next image to label" query that reads them."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import delete, exists, insert, select, update
from sqlalchemy.orm import Session

from db.enums import LabelStatus
from db.models import (
    QUEUE_INDEX_WHERE,
    Checkpoint,
    Embedding,
    Image,
    Prediction,
    Project,
    Projection,
    RelationEdge,
    Skip,
    UncertaintyScore,
)
from db.queue_rank import published_for
from db.settings import get_setting

QUEUE_STATUSES = (LabelStatus.UNLABELED.value, LabelStatus.UNCERTAIN.value)
SCORE_COLUMNS = ("entropy", "margin", "least_confidence", "disagreement", "mc_variance")


@dataclass
class AnalysisRows:
    """Arrays aligned with image_ids; written in one transaction so readers never see half an analysis."""

    image_ids: np.ndarray                     # (N,) int64
    predicted: list                           # class index or list of indices per image
    probs: np.ndarray                         # (N, C) evaluated model (teacher where one exists)
    student_probs: np.ndarray | None          # (N, C) when a teacher exists
    scores: dict[str, np.ndarray]             # uncertainty name -> (N,)
    acquisition_rank: dict[int, int]          # image id -> rank (0 = label first), candidates only
    embeddings: np.ndarray                    # (N, D) float32
    coords: np.ndarray                        # (N, 2)
    projection_method: str
    knn_indices: np.ndarray                   # (N, k) indices into image_ids
    knn_sims: np.ndarray                      # (N, k)


def _chunks(rows: list[dict], size: int = 5000):
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def _bulk(session: Session, model, rows: list[dict]) -> None:
    for chunk in _chunks(rows):
        session.execute(insert(model), chunk)


def replace_analysis(session: Session, checkpoint_id: int, rows: AnalysisRows) -> None:
    """Idempotent: a re-run of the same analysis replaces that checkpoint's rows.

    Two analyses of one checkpoint at once (a retry beside a running job, two workers) take turns on the
    checkpoint's row lock: without it, on PostgreSQL the second one's DELETE could not see the first one's
    uncommitted rows and its INSERT failed on uq_prediction_ckpt_image once the first committed (issue 14).
    SQLite serialises writers already; FOR UPDATE renders as nothing there.
    """
    project_id = session.scalar(select(Checkpoint.project_id).where(Checkpoint.id == checkpoint_id)
                                .with_for_update())
    # ranks copied onto the images (db/queue_rank.py) from an earlier analysis of this checkpoint are stale now
    session.execute(update(Project).where(Project.id == project_id, Project.queue_checkpoint_id == checkpoint_id)
                    .values(queue_checkpoint_id=None))
    for model in (Prediction, UncertaintyScore, Embedding, Projection, RelationEdge):
        session.execute(delete(model).where(model.checkpoint_id == checkpoint_id))
    ids = [int(i) for i in rows.image_ids]
    _bulk(session, Prediction, [
        {"checkpoint_id": checkpoint_id, "image_id": image_id, "predicted": rows.predicted[n],
         "probs": [round(float(p), 6) for p in rows.probs[n]],
         "student_probs": None if rows.student_probs is None else [round(float(p), 6)
                                                                    for p in rows.student_probs[n]]}
        for n, image_id in enumerate(ids)])
    _bulk(session, UncertaintyScore, [
        {"checkpoint_id": checkpoint_id, "image_id": image_id,
         **{name: (float(rows.scores[name][n]) if name in rows.scores else None) for name in SCORE_COLUMNS},
         "acquisition_rank": rows.acquisition_rank.get(image_id)}
        for n, image_id in enumerate(ids)])
    vectors = np.ascontiguousarray(rows.embeddings, dtype="<f4")
    _bulk(session, Embedding, [{"checkpoint_id": checkpoint_id, "image_id": image_id, "dim": vectors.shape[1],
                                "vector": vectors[n].tobytes()} for n, image_id in enumerate(ids)])
    _bulk(session, Projection, [{"checkpoint_id": checkpoint_id, "image_id": image_id,
                                 "method": rows.projection_method, "x": float(rows.coords[n, 0]),
                                 "y": float(rows.coords[n, 1])} for n, image_id in enumerate(ids)])
    edges = [{"checkpoint_id": checkpoint_id, "source_image_id": image_id,
              "target_image_id": ids[int(target)], "rank": rank, "similarity": float(rows.knn_sims[n, rank])}
             for n, image_id in enumerate(ids)
             for rank, target in enumerate(rows.knn_indices[n]) if target >= 0]
    _bulk(session, RelationEdge, edges)


def load_embeddings(session: Session, checkpoint_id: int) -> tuple[np.ndarray, np.ndarray]:
    rows = session.execute(select(Embedding.image_id, Embedding.vector).where(
        Embedding.checkpoint_id == checkpoint_id).order_by(Embedding.image_id)).all()
    if not rows:
        return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
    return (np.array([r[0] for r in rows], np.int64),
            np.stack([np.frombuffer(r[1], dtype="<f4") for r in rows]))


def next_to_label(session: Session, project_id: int, annotator_id: int | None, checkpoint_id: int | None,
                  skipped_since: datetime | None = None, exclude_ids: tuple[int, ...] = (),
                  conditions: tuple = ()) -> int | None:
    """The best-ranked unlabeled train image; this annotator's skips go to the back of the queue.

    `conditions` narrow the pool further (db/leases.py: not leased to someone else, a reader slot free).

    Usually one query: it walks ix_image_queue (ranks published onto the images, db/queue_rank.py), or else
    the (checkpoint, acquisition_rank) index, in rank order and stops at the first eligible image. Unranked images (imported after the analysis) come next, by id; skipped last.
    """
    published = published_for(session, project_id, checkpoint_id)
    skipped, eligible = _queue_filters(project_id, annotator_id, skipped_since, exclude_ids, conditions, published)
    tiers = [[~skipped], []] if annotator_id is not None else [[]]   # skipped images come last
    for extra in tiers:
        if checkpoint_id is None and (first := _cold_start_first(session, project_id, eligible + extra)):
            return first
        for query in _queue_queries(checkpoint_id, eligible + extra, published):
            found = session.scalar(query)
            if found is not None:
                return found
    return None


def _queue_filters(project_id: int, annotator_id: int | None, skipped_since: datetime | None,
                   exclude_ids: tuple[int, ...], conditions: tuple, published: bool = False) -> tuple:
    skipped = exists().where(Skip.image_id == Image.id, Skip.annotator_id == annotator_id)
    if skipped_since is not None:
        skipped = skipped.where(Skip.created_at >= skipped_since)
    # with published ranks: the partial index's own predicate, written out literally, so the planner can prove
    # the index applies (a bound parameter in its place hides that from a generic plan)
    waiting = [QUEUE_INDEX_WHERE] if published else [Image.split == "train", Image.label_status.in_(QUEUE_STATUSES)]
    eligible = [Image.project_id == project_id, *waiting]
    if exclude_ids:
        eligible.append(Image.id.not_in(exclude_ids))
    eligible.extend(conditions)
    return skipped, eligible


def best_ranked_query(project_id: Any, annotator_id: Any, skipped_since: Any, conditions: tuple = ()):
    """The first query next_to_label tries for a project with published ranks (not skipped, best rank), as a
    statement a caller can embed (db/leases.py leases its answer in the same statement)."""
    skipped, eligible = _queue_filters(project_id, annotator_id, skipped_since, (), conditions, published=True)
    return _queue_queries(None, [*eligible, ~skipped], published=True)[0]


def _cold_start_first(session: Session, project_id: int, conditions: list) -> int | None:
    """Before any model: the first still-eligible case of the project's diverse first batch (k-center over
    label-free thumbnails, written at import), checked in chunks so it stays one or two queries."""
    order = get_setting(session, f"cold_start_order:{project_id}") or []
    for start in range(0, len(order), 100):
        chunk = order[start:start + 100]
        eligible = set(session.scalars(select(Image.id).where(Image.id.in_(chunk), *conditions)))
        for image_id in chunk:
            if image_id in eligible:
                return image_id
    return None


def _queue_queries(checkpoint_id: int | None, conditions: list, published: bool = False) -> list:
    """Ranked images in rank order (index walk), then images without a rank, by id."""
    if published:   # ranks copied onto the images: both walks run on ix_image_queue
        return [select(Image.id).where(*conditions, Image.queue_rank.is_not(None)).order_by(Image.queue_rank)
                .limit(1),
                select(Image.id).where(*conditions, Image.queue_rank.is_(None)).order_by(Image.id).limit(1)]
    if checkpoint_id is None:
        return [select(Image.id).where(*conditions).order_by(Image.id).limit(1)]
    is_ranked = (UncertaintyScore.checkpoint_id == checkpoint_id) & UncertaintyScore.acquisition_rank.is_not(None)
    ranked = (select(Image.id).join(UncertaintyScore, UncertaintyScore.image_id == Image.id)
              .where(is_ranked, *conditions).order_by(UncertaintyScore.acquisition_rank).limit(1))
    unranked = (select(Image.id).where(*conditions, ~exists().where(UncertaintyScore.image_id == Image.id,
                                                                   is_ranked))
                .order_by(Image.id).limit(1))
    return [ranked, unranked]
