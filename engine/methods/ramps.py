"""Ramp-up and learning-rate schedules, precomputed as per-step arrays over the run's planned iterations."""
from __future__ import annotations

import itertools
import math

import numpy as np


def sigmoid_rampup(t: float, length: float) -> float:
    """Laine & Aila: exp(-5 (1 - t/T)^2); 1 at t >= T, e^-5 at t = 0; length 0 means no ramp."""
    if length <= 0:
        return 1.0
    phase = 1.0 - min(max(t, 0.0), length) / length
    return float(math.exp(-5.0 * phase * phase))


def linear_rampup(t: float, length: float) -> float:
    """S2MTS2 fine-tuning: min(1, t/T)."""
    return 1.0 if length <= 0 else float(min(max(t, 0.0) / length, 1.0))


def weight_schedule(total_steps: int, start: int, ramp_steps: int, kind: str = "sigmoid",
                    steps_per_epoch: int | None = None, gate_step: int | None = None) -> np.ndarray:
    """Consistency weight per step (before lambda_max): 0 before `start` and before `gate_step`.

    With `steps_per_epoch` the ramp advances by whole epochs, as SRC-MT and MT pass the integer epoch.
    """
    ramp = sigmoid_rampup if kind == "sigmoid" else linear_rampup
    weights = np.zeros(total_steps, dtype=np.float64)
    for step in range(start, total_steps):
        t = step - start
        if steps_per_epoch:
            weights[step] = ramp(t // steps_per_epoch, ramp_steps / steps_per_epoch)
        else:
            weights[step] = ramp(t, ramp_steps)
    if gate_step is not None:
        weights[: max(gate_step, 0)] = 0.0
    return weights


def lr_factors(total_steps: int, schedule: str, warmup_steps: int = 0, steps_per_epoch: int = 1,
               gamma: float = 0.9, restarts: tuple[int, ...] = ()) -> np.ndarray:
    """LR multiplier per step: linear warm-up then cosine / constant / per-epoch exponential / poly decay.

    `restarts` begin a fresh warm-up + schedule (S2MTS2's second stage starts its own schedule).
    """
    bounds = [0, *sorted(r for r in restarts if 0 < r < total_steps), total_steps]
    out = np.ones(total_steps, dtype=np.float64)
    for begin, end in itertools.pairwise(bounds):
        n = end - begin
        t = np.arange(n, dtype=np.float64)
        if schedule == "cosine":
            seg = 0.5 * (1.0 + np.cos(math.pi * t / max(n, 1)))
        elif schedule == "exp_epoch":
            seg = gamma ** (t // max(steps_per_epoch, 1))
        elif schedule == "poly":  # (1 - t/n)^power, the segmentation papers' decay; gamma is the power
            seg = (1.0 - t / max(n, 1)) ** gamma
        else:
            seg = np.ones(n)
        if warmup_steps > 0:
            seg = seg * np.minimum(1.0, (t + 1) / warmup_steps)
        out[begin:end] = seg
    return out
