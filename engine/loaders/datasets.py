"""ArrayData (the engine's input: numpy arrays, no db) and its uint8 tensor form on the training device."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class ArrayData:
    """Training pool plus optional validation arrays.

    images: uint8 (N, H, W) or (N, H, W, 3). labels: multiclass int64 (N,) with -1 = unlabeled;
    multilabel float32 (N, C) multi-hot with `labeled_mask` (N,) bool. groups: patient keys (N,) used to
    keep a validation hold-out patient-disjoint. val_images None: the engine holds out 20 % of the labeled.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    task: Literal["multiclass", "multilabel"] = "multiclass"
    labeled_mask: np.ndarray | None = None
    groups: np.ndarray | None = None
    val_images: np.ndarray | None = None
    val_labels: np.ndarray | None = None

    @property
    def is_labeled(self) -> np.ndarray:
        if self.task == "multiclass":
            return np.asarray(self.labels) >= 0
        if self.labeled_mask is None:
            raise ValueError("multilabel ArrayData needs labeled_mask")
        return np.asarray(self.labeled_mask, dtype=bool)

    @property
    def in_chans(self) -> int:
        return 3 if self.images.ndim == 4 else 1


def stratified_holdout(labels: np.ndarray, groups: np.ndarray | None = None, frac: float = 0.2,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, val_idx): a stratified, patient-disjoint hold-out with at least one image per class.

    Patients are assigned whole, rarest label first, until each class has ~frac of its images in val.
    labels: int (N,) or multi-hot (N, C).
    """
    labels = np.asarray(labels)
    onehot = labels.astype(bool) if labels.ndim == 2 else np.eye(int(labels.max()) + 1, dtype=bool)[labels]
    groups = np.arange(len(labels)) if groups is None else np.asarray(groups)
    uniq, inverse = np.unique(groups, return_inverse=True)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(uniq))
    per_group = np.zeros((len(uniq), onehot.shape[1]), dtype=np.int64)
    np.add.at(per_group, inverse, onehot.astype(np.int64))
    target = np.maximum(1, np.floor(frac * onehot.sum(0))).astype(np.int64)
    taken = np.zeros(onehot.shape[1], dtype=np.int64)
    in_val = np.zeros(len(uniq), dtype=bool)
    for cls in np.argsort(onehot.sum(0)):  # rarest class first
        for g in order:
            if taken[cls] >= target[cls]:
                break
            if not in_val[g] and per_group[g, cls] > 0:
                in_val[g] = True
                taken += per_group[g]
    val_mask = in_val[inverse]
    return np.flatnonzero(~val_mask), np.flatnonzero(val_mask)


def stratified_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Indices of a seeded, class-stratified subset (>= 1 per class): the benchmark's labeled set."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    keys = labels if labels.ndim == 1 else np.argmax(labels * rng.random(labels.shape), axis=1)
    chosen = []
    for cls in np.unique(keys):
        members = np.flatnonzero(keys == cls)
        n = max(1, round(fraction * len(members)))
        chosen.append(rng.choice(members, size=n, replace=False))
    return np.sort(np.concatenate(chosen))


def to_uint8_tensor(images: np.ndarray, size: int | None = None) -> torch.Tensor:
    """(N, H, W[, 3]) uint8 -> (N, C, H, W) uint8 tensor, resized once (bilinear, antialiased) if asked."""
    arr = np.asarray(images)
    if arr.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {arr.dtype}")
    tensor = torch.from_numpy(np.ascontiguousarray(arr))
    tensor = tensor.unsqueeze(1) if tensor.ndim == 3 else tensor.permute(0, 3, 1, 2).contiguous()
    if size is not None and tuple(tensor.shape[-2:]) != (size, size):
        chunks = [F.interpolate(c.float(), size=(size, size), mode="bilinear", antialias=True,
                                align_corners=False).round_().clamp_(0, 255).to(torch.uint8)
                  for c in tensor.split(512)]
        tensor = torch.cat(chunks) if chunks else tensor
    return tensor


def targets_tensor(labels: np.ndarray, task: str) -> torch.Tensor:
    return torch.as_tensor(np.asarray(labels), dtype=torch.long if task == "multiclass" else torch.float32)
