"""What the one training loop needs to know about segmentation data: mask tensors, pixel counts, val Dice."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.loaders.transforms import ViewMaker
from engine.scoring.metrics import segmentation_metrics
from engine.scoring.predict import predict_seg_tensor

SELECT_KEY = "dice"  # validation selects on mean foreground Dice (AUC for classification)


def mask_tensor(masks: np.ndarray, size: int | None = None) -> torch.Tensor:
    """(N, H, W) class indices (-1 = unannotated) -> int64 tensor, nearest-resized once if asked."""
    tensor = torch.as_tensor(np.asarray(masks), dtype=torch.long)
    if size is not None and tuple(tensor.shape[-2:]) != (size, size):
        tensor = F.interpolate(tensor.unsqueeze(1).float(), size=(size, size), mode="nearest").squeeze(1).long()
    return tensor


def pixel_counts(masks: np.ndarray, num_classes: int) -> np.ndarray:
    """Annotated pixels per class over the labeled masks (class weights are per pixel here)."""
    flat = np.asarray(masks).ravel()
    return np.bincount(flat[flat >= 0].astype(np.int64), minlength=num_classes)


def evaluate(model: nn.Module, images: torch.Tensor, masks: np.ndarray, views: ViewMaker,
             class_names: Sequence[str], batch_size: int, dtype: torch.dtype | None) -> dict[str, Any]:
    """Validation metrics of one model (per-image lists dropped: they belong in case views, not history)."""
    probs, _ = predict_seg_tensor(model, images, views, min(batch_size, 64), dtype)
    metrics = segmentation_metrics(probs.argmax(axis=1), masks, class_names)
    metrics.pop("per_image")
    return metrics
