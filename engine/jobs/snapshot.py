"""Turn the project's current labels into training arrays (and a hash that pins the snapshot)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import NamedTuple

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


class SnapshotRow(NamedTuple):
    """One image of the snapshot query; plain values, so a DDP rank 0 can send the rows to the others."""

    id: int
    split: str
    label_status: str
    patient_key: str | None
    value: object
    mask_path: str | None


def snapshot_rows(store: Store, project: Project) -> list[SnapshotRow]:
    """The project's non-excluded images with their current label, by id (what a snapshot is built from)."""
    with store.sessions.begin() as session:
        rows = session.execute(
            select(Image.id, Image.split, Image.label_status, Image.patient_key, Label.value, Label.mask_path)
            .outerjoin(Label, Label.id == Image.current_label_id)
            .where(Image.project_id == project.id, Image.label_status != LabelStatus.EXCLUDED.value)
            .order_by(Image.id)).all()
    return [SnapshotRow(*row) for row in rows]


def _encode(task: str, n_classes: int, values: list) -> np.ndarray:
    if task == "multilabel":
        out = np.zeros((len(values), n_classes), dtype=np.float32)
        for i, value in enumerate(values):
            if value is not None:
                out[i, value] = 1.0
        return out
    return np.array([-1 if v is None else int(v) for v in values], dtype=np.int64)


def _masks(store: Store, mask_paths: list[str | None], size: int) -> np.ndarray:
    """(N, size, size) int64 class-index masks; -1 everywhere for images without a mask (unlabeled)."""
    import cv2

    from engine.data.io import load_mask

    out = np.full((len(mask_paths), size, size), -1, dtype=np.int64)
    for i, path in enumerate(mask_paths):
        if path:
            mask = load_mask(store.config.home / path)
            out[i] = cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST) if mask.shape != (size, size) else mask
    return out


def load_snapshot(store: Store, project: Project, size: int | None = None,
                  rows: list[SnapshotRow] | None = None) -> Snapshot:
    """Train split (excluded images left out) as the pool; labeled val split for validation; test unused.

    rows: the snapshot query's result taken earlier (DDP ranks > 0 get rank 0's, so all train on one snapshot).
    """
    size = size or project.image_size
    if rows is None:
        rows = snapshot_rows(store, project)
    cache = build_cache(store, project.id, size, project.channels)
    segmentation = project.task == "segmentation"
    has_label = (lambda r: r.mask_path is not None) if segmentation else (lambda r: r.value is not None)
    train = [r for r in rows if r.split == "train"]
    val = [r for r in rows if r.split == "val" and has_label(r)]
    n_classes = len(project.classes)
    ids = np.array([r.id for r in train], dtype=np.int64)
    labeled = np.array([has_label(r) for r in train], dtype=bool)
    digest = hashlib.sha256(json.dumps([(r.id, r.value, r.mask_path) for r in train + val if has_label(r)]).encode())
    val_ids = np.array([r.id for r in val], dtype=np.int64)
    if segmentation:
        labels = _masks(store, [r.mask_path for r in train], size)
        val_labels = _masks(store, [r.mask_path for r in val], size) if val else None
    else:
        labels = _encode(project.task, n_classes, [r.value for r in train])
        val_labels = _encode(project.task, n_classes, [r.value for r in val]) if val else None
    return Snapshot(
        image_ids=ids, images=np.asarray(cache.images[cache.rows(ids)]), labels=labels, labeled_mask=labeled,
        groups=np.array([r.patient_key or f"image-{r.id}" for r in train]),
        val_images=np.asarray(cache.images[cache.rows(val_ids)]) if val else None, val_labels=val_labels,
        labels_used=int(labeled.sum()) + len(val), label_hash=digest.hexdigest())
