"""Segmentation inference: checkpoint + uint8 images -> masks, per-image uncertainty and embeddings.

Uncertainty per image: the mean pixel entropy of the softmax (normalised by log K, so in [0, 1]) and the
teacher-student disagreement, 1 - Dice between their foreground masks (METHODS §0.4 empty-mask rule).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from engine.core.checkpoints import load_checkpoint
from engine.core.config import TrainConfig
from engine.core.device import amp_dtype, pick_device
from engine.inference.fast_eval import prepare_for_inference
from engine.loaders.datasets import to_uint8_tensor
from engine.loaders.transforms import ViewMaker
from engine.models.unet import create_seg_model
from engine.scoring.metrics import binary_seg_scores
from engine.scoring.predict import predict_seg_tensor


@dataclass
class SegPredictions:
    student_masks: np.ndarray  # (N, H, W) uint8 class indices
    student_entropy: np.ndarray  # (N,) mean pixel entropy / log K
    student_features: np.ndarray  # (N, D) the 1/4-resolution decoder feature, average-pooled (for maps, kNN)
    teacher_masks: np.ndarray | None = None
    teacher_entropy: np.ndarray | None = None
    disagreement: np.ndarray | None = None  # (N,) 1 - Dice(student, teacher) over foreground
    class_names: tuple[str, ...] = ()


def pixel_entropy(probs: np.ndarray) -> np.ndarray:
    """(N, K, H, W) -> (N,) mean over pixels of the entropy, divided by log K (1 = uniform everywhere)."""
    ent = -(probs * np.log(np.clip(probs, 1e-12, 1.0))).sum(axis=1)
    return (ent.mean(axis=(1, 2)) / np.log(max(probs.shape[1], 2))).astype(np.float32)


def mask_disagreement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, H, W) x2 -> (N,) 1 - mean foreground-class Dice between the two masks (both empty: 0)."""
    n_cls = int(max(a.max(initial=0), b.max(initial=0))) + 1
    out = np.zeros(len(a), dtype=np.float32)
    for i in range(len(a)):
        dice = [binary_seg_scores(a[i] == c, b[i] == c)["dice"] for c in range(1, max(n_cls, 2))]
        out[i] = 1.0 - float(np.mean(dice))
    return out


def load_seg_models(checkpoint: str | Path | dict[str, Any], device: str = "auto"
                    ) -> tuple[dict[str, nn.Module], dict]:
    payload = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    spec, dev = payload["model"], pick_device(device)
    models: dict[str, nn.Module] = {}
    for role in ("student", "teacher"):
        if payload.get(role) is not None:
            model = create_seg_model(spec["backbone"], spec["num_classes"], spec["in_chans"])
            model.load_state_dict(payload[role])
            models[role] = model.to(dev).eval()
    return models, payload


def infer_segmentation(checkpoint: str | Path | dict[str, Any], images: np.ndarray, batch_size: int = 64,
                       device: str = "auto") -> SegPredictions:
    """uint8 (N, H, W[, 3]) at any size (resized to the training size; masks come back at that size)."""
    models, payload = load_seg_models(checkpoint, device)
    prepare_for_inference(models)   # fresh eval-only copies: BatchNorm folded, channels-last on CPU
    cfg = TrainConfig.from_dict(payload["config"])
    views = ViewMaker(cfg.data.aug, cfg.data.mean, cfg.data.std)
    tensor = to_uint8_tensor(images, payload["model"].get("image_size"))
    dtype = amp_dtype(next(models["student"].parameters()).device, cfg.amp)
    out: dict[str, Any] = {}
    for role, model in models.items():
        probs, feats = predict_seg_tensor(model, tensor, views, batch_size, dtype)
        out[f"{role}_masks"] = probs.argmax(axis=1).astype(np.uint8)
        out[f"{role}_entropy"] = pixel_entropy(probs)
        if role == "student":
            out["student_features"] = feats
    if "teacher_masks" in out:
        out["disagreement"] = mask_disagreement(out["student_masks"], out["teacher_masks"])
    return SegPredictions(class_names=tuple(payload["class_names"]), **out)
