"""Which images a run trains on and which it selects on — one function, so a job can rebuild the val split.

The supervised shadow (engine.jobs.shadow) evaluates two checkpoints on the exact images the loop selected
on; with no project val split that is the loop's seeded, stratified, patient-disjoint 20 % hold-out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.loaders.datasets import ArrayData, stratified_holdout


@dataclass(frozen=True)
class Split:
    labeled: np.ndarray  # training rows with a label
    unlabeled: np.ndarray  # training rows without one
    pool: np.ndarray  # every training row (labeled + unlabeled)
    val_idx: np.ndarray | None  # rows of data.images held out for validation; None: data.val_images is the val set


def split_rows(data: ArrayData, seed: int) -> Split:
    """CONTRACTS §6: without a val set, a stratified, patient-disjoint 20 % of the labeled rows (seeded)."""
    labeled = np.flatnonzero(data.is_labeled)
    pool = np.arange(len(data.images))
    val_idx = None
    if data.val_images is None:
        groups = None if data.groups is None else np.asarray(data.groups)[labeled]
        keys = np.zeros(len(labeled), np.int64) if data.task == "segmentation" else np.asarray(data.labels)[labeled]
        keep, held = stratified_holdout(keys, groups, 0.2, seed)
        val_idx, labeled = labeled[held], labeled[keep]
        pool = np.setdiff1d(pool, val_idx)
    return Split(labeled, np.setdiff1d(pool, labeled), pool, val_idx)


def val_set(data: ArrayData, split: Split) -> tuple[np.ndarray, np.ndarray]:
    """(val images, val labels) as the loop selects on them."""
    if split.val_idx is None:
        return data.val_images, np.asarray(data.val_labels)
    return data.images[split.val_idx], np.asarray(data.labels)[split.val_idx]
