"""Turn the project's current labels into training arrays (and a hash that pins the snapshot)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select

from db.enums import LabelStatus
from db.models import Image, Label, Project
from db.store import Store
from engine.data.cache import build_cache


@dataclass
class Snapshot:
    image_ids: np.ndarray        # train pool ids (labeled + unlabeled), ascending
    images: np.ndarray           # uint8 cache rows for image_ids
    labels: np.ndarray           # multiclass (N,) int64, -1 unlabeled; multilabel (N, C) float32
    labeled_mask: np.ndarray     # (N,) bool
    groups: np.ndarray           # (N,) patient keys ('' when unknown -> one group per image)
    val_images: np.ndarray | None
    val_labels: np.ndarray | None
    labels_used: int
    label_hash: str


def _encode(task: str, n_classes: int, values: list) -> np.ndarray:
    if task == "multilabel":
        out = np.zeros((len(values), n_classes), dtype=np.float32)
        for i, value in enumerate(values):
            if value is not None:
                out[i, value] = 1.0
        return out
    return np.array([-1 if v is None else int(v) for v in values], dtype=np.int64)


def load_snapshot(store: Store, project: Project, size: int | None = None) -> Snapshot:
    """Train split (excluded images left out) as the pool; labeled val split for validation; test unused."""
    size = size or project.image_size
    with store.sessions.begin() as session:
        rows = session.execute(
            select(Image.id, Image.split, Image.label_status, Image.patient_key, Label.value)
            .outerjoin(Label, Label.id == Image.current_label_id)
            .where(Image.project_id == project.id, Image.label_status != LabelStatus.EXCLUDED.value)
            .order_by(Image.id)).all()
    cache = build_cache(store, project.id, size, project.channels)
    train = [r for r in rows if r.split == "train"]
    val = [r for r in rows if r.split == "val" and r.value is not None]
    n_classes = len(project.classes)
    ids = np.array([r.id for r in train], dtype=np.int64)
    values = [r.value for r in train]
    labeled = np.array([v is not None for v in values], dtype=bool)
    digest = hashlib.sha256(json.dumps([(r.id, r.value) for r in train + val if r.value is not None]).encode())
    val_ids = np.array([r.id for r in val], dtype=np.int64)
    return Snapshot(
        image_ids=ids, images=np.asarray(cache.images[cache.rows(ids)]),
        labels=_encode(project.task, n_classes, values), labeled_mask=labeled,
        groups=np.array([r.patient_key or f"image-{r.id}" for r in train]),
        val_images=np.asarray(cache.images[cache.rows(val_ids)]) if len(val) else None,
        val_labels=_encode(project.task, n_classes, [r.value for r in val]) if len(val) else None,
        labels_used=int(labeled.sum()) + len(val), label_hash=digest.hexdigest())
