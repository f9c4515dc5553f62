"""What a training run reports back: its result record, and the two ways it stops early (errors, cancel)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.core.config import TrainConfig

STOPS = ("completed", "early_stop", "budget")  # epoch-boundary decisions, by code (broadcast under DDP)


class NonFiniteLossError(RuntimeError):
    """The loss became NaN/inf; training stops at once (no silent divergence)."""


class Cancelled(Exception):
    """Raised by a callback to stop training; the loop saves last.pt and re-raises."""


@dataclass
class TrainResult:
    config: TrainConfig
    best_metrics: dict[str, dict[str, Any]]  # val metrics per model role at the selected epoch
    selected_role: str  # the model role selection and early stopping looked at
    best_step: int
    steps_run: int
    planned_steps: int
    steps_per_epoch: int
    train_seconds: float
    stopped: str  # completed | early_stop | budget
    history: list[dict[str, Any]] = field(default_factory=list)
    best_state: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    best_checkpoint: Path | None = None
    last_checkpoint: Path | None = None

    @property
    def epochs_run(self) -> float:
        return self.steps_run / self.steps_per_epoch


