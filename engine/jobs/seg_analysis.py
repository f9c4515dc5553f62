"""Segmentation side of the analyze job: predicted masks become editable proposals (Label rows with
source `model`, never training labels), per-image uncertainty feeds the queue, Dice on labeled splits."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from sqlalchemy import select

from db.enums import LabelSource, LabelStatus
from db.models import Image, Label
from db.store import Store
from engine.data.io import load_mask, save_mask
from engine.inference.seg_infer import infer_segmentation
from engine.scoring.metrics import segmentation_metrics


@dataclass
class SegAnalysis:
    masks: np.ndarray              # (N, S, S) evaluated model (teacher where one exists)
    fractions: np.ndarray          # (N, K) share of pixels per class: the "probabilities" row of a case
    embeddings: np.ndarray         # (N, D) pooled decoder features
    scores: dict[str, np.ndarray]  # entropy (mean pixel entropy), disagreement (1 - Dice student/teacher)


def analyze_segmentation(checkpoint_path, images: np.ndarray, n_classes: int, device: str) -> SegAnalysis:
    preds = infer_segmentation(checkpoint_path, images, device=device)
    has_teacher = preds.teacher_masks is not None
    masks = preds.teacher_masks if has_teacher else preds.student_masks
    fractions = np.stack([(masks == c).mean(axis=(1, 2)) for c in range(n_classes)], axis=1).astype(np.float32)
    scores = {"entropy": preds.teacher_entropy if has_teacher else preds.student_entropy}
    if preds.disagreement is not None:
        scores["disagreement"] = preds.disagreement
    return SegAnalysis(masks, fractions, preds.student_features, scores)


def write_proposals(store: Store, project_id: int, checkpoint_id: int, ids: np.ndarray, masks: np.ndarray) -> int:
    """One proposal per unlabeled image and checkpoint (re-analysis does not duplicate them)."""
    with store.sessions.begin() as session:
        candidates = set(session.scalars(select(Image.id).where(
            Image.project_id == project_id, Image.label_status.in_((LabelStatus.UNLABELED.value,
                                                                     LabelStatus.UNCERTAIN.value)))))
        done = set(session.scalars(select(Label.image_id).where(Label.checkpoint_id == checkpoint_id,
                                                                Label.source == LabelSource.MODEL.value)))
        sizes = dict(session.execute(select(Image.id, Image.height).where(Image.project_id == project_id)).all())
        widths = dict(session.execute(select(Image.id, Image.width).where(Image.project_id == project_id)).all())
        rows = []
        for image_id, mask in zip(ids.tolist(), masks):
            if image_id not in candidates or image_id in done:
                continue
            full = cv2.resize(mask, (widths[image_id], sizes[image_id]), interpolation=cv2.INTER_NEAREST)
            path = save_mask(full, store.config.masks_dir / f"p{project_id}" / f"{image_id}-model{checkpoint_id}")
            rows.append(Label(image_id=image_id, kind="class", value=None, source=LabelSource.MODEL.value,
                              mask_path=path.relative_to(store.config.home).as_posix(),
                              checkpoint_id=checkpoint_id, comment="model proposal"))
        session.add_all(rows)
    return len(rows)


WORST_CASES = 6  # per split: the lowest-Dice images, with the model's mask kept for the overlay view


def seg_evaluation(store: Store, project_id: int, ids: np.ndarray, masks: np.ndarray,
                   classes: list[str], checkpoint_id: int | None = None) -> dict:
    """Dice/Jaccard/HD95/ASD of the evaluated model per labeled split (masks at the analysis size), the
    per-image Dice (for the histogram) and the worst cases with their predicted mask files (for overlays)."""
    with store.sessions.begin() as session:
        rows = session.execute(select(Image.id, Image.split, Label.mask_path).join(
            Label, Label.id == Image.current_label_id).where(Image.project_id == project_id,
                                                             Label.mask_path.is_not(None))).all()
    position = {int(image_id): n for n, image_id in enumerate(ids)}
    size = masks.shape[1:]
    report = {}
    for split in ("val", "test", "train"):
        chosen = [(position[r.id], r.mask_path, int(r.id)) for r in rows if r.split == split and r.id in position]
        if not chosen:
            continue
        truth = np.stack([cv2.resize(load_mask(store.config.home / path), size[::-1], interpolation=cv2.INTER_NEAREST)
                          for _, path, _ in chosen]).astype(np.int64)
        predicted = masks[[n for n, _, _ in chosen]]
        metrics = segmentation_metrics(predicted, truth, classes)
        dice = metrics["per_image"]["dice"]
        report[split] = {"n": len(chosen), "metrics": {k: v for k, v in metrics.items() if k != "per_image"},
                         "per_image": {"image_id": [c[2] for c in chosen], "dice": dice},
                         "worst": _worst_cases(store, project_id, checkpoint_id, split, chosen, predicted, dice)}
    return report


def _worst_cases(store: Store, project_id: int, checkpoint_id: int | None, split: str, chosen: list,
                 predicted: np.ndarray, dice: list[float]) -> list[dict]:
    """The WORST_CASES lowest-Dice images of a split, each with its predicted mask saved as a PNG."""
    order = [int(i) for i in np.argsort(np.nan_to_num(np.asarray(dice, dtype=np.float64), nan=2.0))
             if not np.isnan(dice[i])]
    folder = store.config.masks_dir / f"p{project_id}" / f"eval{checkpoint_id or 0}_{split}"
    out = []
    for i in order[:WORST_CASES]:
        path = save_mask(predicted[i].astype(np.uint8), folder / str(chosen[i][2]))
        out.append({"image_id": chosen[i][2], "dice": dice[i], "truth_mask": chosen[i][1],
                    "predicted_mask": path.relative_to(store.config.home).as_posix()})
    return out
