"""Inference: checkpoint + uint8 images -> student/teacher probabilities and pre-logit features."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.core.checkpoints import load_checkpoint
from engine.core.config import TrainConfig
from engine.core.device import amp_dtype, analysis_dtype, pick_device
from engine.inference.fast_eval import prepare_for_inference
from engine.inference.mc_dropout import has_dropout, mc_dropout_samples, mc_variance
from engine.loaders.datasets import to_uint8_tensor
from engine.loaders.transforms import ViewMaker
from engine.models import create_model
from engine.scoring.predict import predict_tensor

PROGRESS_CHUNK = 2048  # images per progress report of a long inference

log = logging.getLogger("medssl.infer")

@dataclass
class Predictions:
    student_probs: np.ndarray  # (N, C) float32
    student_features: np.ndarray  # (N, D) float32 pre-logit embeddings
    teacher_probs: np.ndarray | None = None
    teacher_features: np.ndarray | None = None
    class_names: tuple[str, ...] = ()
    mc_variance: np.ndarray | None = None  # (N,) MC-dropout predictive variance, when asked for and possible


def load_models(checkpoint: str | Path | dict[str, Any], device: str = "auto") -> tuple[dict[str, nn.Module], dict]:
    """Rebuild student (and teacher) from a checkpoint; returns (models, checkpoint payload)."""
    payload = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    spec, dev = payload["model"], pick_device(device)
    models: dict[str, nn.Module] = {}
    for role in ("student", "teacher"):
        if payload.get(role) is None:
            continue
        model = _rebuild(spec, payload[role])
        models[role] = model.to(dev).eval()
    return models, payload


def _rebuild(spec: dict[str, Any], state: dict[str, torch.Tensor]) -> nn.Module:
    model = create_model(spec["backbone"], spec["num_classes"], spec["in_chans"])
    model.load_state_dict(state)
    return model


def infer(checkpoint: str | Path | dict[str, Any], images: np.ndarray, batch_size: int = 256,
          device: str = "auto", mc_passes: int = 0, mc_seed: int = 0,
          on_progress: Callable[[int, int], None] | None = None, for_analysis: bool = False) -> Predictions:
    """uint8 (N, H, W[, 3]) images at any size (resized to the training size) -> Predictions.

    mc_passes >= 2 also runs that many MC-dropout passes of the evaluated model (teacher, else student)
    and fills mc_variance; a backbone without active dropout is skipped with a log line (stays None).
    on_progress(done, total) is called after each chunk of PROGRESS_CHUNK images. for_analysis: the analysis
    job's precision (engine.core.device.analysis_dtype: bf16 on CPUs with native bf16).
    """
    models, payload = load_models(checkpoint, device)
    prepare_for_inference(models)   # fresh eval-only copies: BatchNorm folded, channels-last on CPU
    cfg = TrainConfig.from_dict(payload["config"])
    spec = payload["model"]
    views = ViewMaker(cfg.data.aug, cfg.data.mean, cfg.data.std)
    tensor = to_uint8_tensor(images, spec.get("image_size"))
    dev = next(models["student"].parameters()).device
    dtype = analysis_dtype(dev, cfg.amp) if for_analysis else amp_dtype(dev, cfg.amp)
    out: dict[str, Any] = {}
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {role: [] for role in models}
    total = len(tensor)
    for start in range(0, max(total, 1), PROGRESS_CHUNK):   # chunks, so a long analysis reports as it goes
        chunk = tensor[start:start + PROGRESS_CHUNK]
        for role, model in models.items():
            parts[role].append(predict_tensor(model, chunk, views, payload["task"], batch_size, dtype))
        if on_progress is not None:
            on_progress(min(start + PROGRESS_CHUNK, total), total)
    for role, chunks in parts.items():
        out[f"{role}_probs"] = np.concatenate([p for p, _ in chunks])
        out[f"{role}_features"] = np.concatenate([f for _, f in chunks])
    if mc_passes:
        out["mc_variance"] = _mc_variance(models.get("teacher", models["student"]), tensor, views,
                                          payload["task"], mc_passes, mc_seed, batch_size, dtype)
    return Predictions(class_names=tuple(payload["class_names"]), **out)


def _mc_variance(model: nn.Module, tensor: torch.Tensor, views: ViewMaker, task: str, passes: int, seed: int,
                 batch_size: int, dtype: torch.dtype | None) -> np.ndarray | None:
    """Predictive variance over MC-dropout passes, or None (logged) when it would be all zeros anyway."""
    if passes < 2:
        log.info("MC-dropout variance needs at least 2 passes (got %d); skipped", passes)
        return None
    if not has_dropout(model):
        log.info("MC-dropout variance skipped: the %s has no active dropout", type(model).__name__)
        return None
    return mc_variance(mc_dropout_samples(model, tensor, views, task, passes, seed, batch_size, dtype))
