"""The supervised shadow of a semi-supervised train job, and the proof against it (issue 16 §3-4).

Every SSL job also has a supervised run on the same labels, backbone, budget and val split: reused when a
checkpoint of exactly that configuration already exists for the current label snapshot, trained inside the
job otherwise. Both selected models are scored on the val images the loop selected on and a seeded paired
bootstrap (1,000 resamples) gives the 95 % CI of "SSL minus supervised". SSL then starts from the shadow's
weights (no in-run supervised warm-up) unless the method has a warm start of its own (S²MTS² pre-training).
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from db.enums import Task
from engine.core.checkpoints import load_checkpoint
from engine.core.config import TrainConfig
from engine.data.catalog import LABELED_ONLY_METHODS
from engine.loaders.datasets import ArrayData
from engine.scoring.paired import PairedDelta, paired_auc_delta, paired_mean_delta
from engine.training.splits import split_rows, val_set

log = logging.getLogger("medssl.shadow")
NO_SHADOW_INIT = ("s2mts2",)  # its self-supervised stage 1 is its warm start; a supervised init would skip it
RESAMPLES = 1000


def wants_shadow(method: str, params: dict[str, Any]) -> bool:
    """Every semi-supervised method gets one unless the job asks not to (`shadow: false`)."""
    return method not in LABELED_ONLY_METHODS and params.get("shadow", True) is not False


def shadow_config(cfg: TrainConfig, task: str) -> TrainConfig:
    """Same backbone, data, optimiser, seed, epochs and budget; the labeled-only method with its defaults."""
    method = "seg_supervised" if task == Task.SEGMENTATION else "supervised"
    return dataclasses.replace(cfg, method=method, method_params={})


def ssl_config_from_shadow(cfg: TrainConfig) -> TrainConfig:
    """Starting from the shadow's weights replaces the in-run supervised warm-up: the whole budget is SSL."""
    if cfg.method in NO_SHADOW_INIT:
        return cfg
    return dataclasses.replace(cfg, method_params={**dict(cfg.method_params or {}), "warmup_fraction": 0.0})


def starts_from_shadow(method: str) -> bool:
    return method not in NO_SHADOW_INIT


def initial_weights(checkpoint_path: Path, role: str) -> dict[str, torch.Tensor]:
    """The shadow's selected model (its EMA copy, usually) as the SSL student's starting point."""
    payload = load_checkpoint(checkpoint_path)
    return payload.get(role) or payload["student"]


def compare(ssl_path: Path, ssl_role: str, shadow_path: Path, shadow_role: str, data: ArrayData, seed: int,
            resample_seed: int = 0) -> PairedDelta:
    """SSL minus shadow on the loop's val split (AUC for classification, mean foreground Dice for masks)."""
    images, labels = val_set(data, split_rows(data, seed))
    if data.task == Task.SEGMENTATION:
        a = _per_image_dice(ssl_path, ssl_role, images, labels, data.class_names)
        b = _per_image_dice(shadow_path, shadow_role, images, labels, data.class_names)
        return paired_mean_delta(a, b, "dice", RESAMPLES, resample_seed)
    a, b = _val_probs(ssl_path, ssl_role, images), _val_probs(shadow_path, shadow_role, images)
    return paired_auc_delta(a, b, np.asarray(labels), data.task, RESAMPLES, resample_seed)


def _val_probs(path: Path, role: str, images: np.ndarray) -> np.ndarray:
    from engine.inference.infer import infer

    pred = infer(path, images)
    return pred.teacher_probs if role == "teacher" and pred.teacher_probs is not None else pred.student_probs


def _per_image_dice(path: Path, role: str, images: np.ndarray, masks: np.ndarray,
                    class_names: tuple[str, ...]) -> np.ndarray:
    from engine.inference.seg_infer import infer_segmentation
    from engine.scoring.metrics import segmentation_metrics
    from engine.training.seg_task import mask_tensor

    pred = infer_segmentation(path, images)
    masks_out = pred.teacher_masks if role == "teacher" and pred.teacher_masks is not None else pred.student_masks
    truth = mask_tensor(masks, masks_out.shape[-1]).numpy()
    return np.asarray(segmentation_metrics(masks_out, truth, class_names)["per_image"]["dice"], dtype=np.float64)


def comparison_record(delta: PairedDelta, shadow_id: int, shadow_method: str, reused: bool) -> dict[str, Any]:
    """What the SSL checkpoint stores (metrics.shadow) and `status --json` shows (checkpoints.active.shadow)."""
    return {"checkpoint_id": shadow_id, "method": shadow_method, "metric": delta.metric,
            "value": _finite(delta.value_b), "ssl_value": _finite(delta.value_a), "delta": _finite(delta.delta),
            "ci95": [_finite(delta.ci95[0]), _finite(delta.ci95[1])], "n_val": delta.n,
            "resamples": delta.resamples, "reused": reused}


def choose_active(rule: str, record: dict[str, Any] | None) -> tuple[str, str]:
    """("ssl" | "shadow", why) under the project's `activate` rule; ties and undefined deltas keep SSL."""
    if rule == "latest" or record is None:
        return "ssl", "activate = latest: the newest checkpoint becomes active" if rule == "latest" else \
            "no supervised shadow to compare with"
    delta = record.get("delta")
    if delta is None:
        return "ssl", "the val metric is undefined for one of the two models; the SSL model stays active"
    if delta < 0:
        return "shadow", (f"activate = best_on_val: supervised scored {record['value']:.4f} on val, "
                          f"above the SSL model's {record['ssl_value']:.4f}")
    return "ssl", (f"activate = best_on_val: the SSL model scored {record['ssl_value']:.4f} on val, "
                   f"not below supervised {record['value']:.4f}")


def _finite(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 6)
