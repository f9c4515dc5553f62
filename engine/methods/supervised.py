"""supervised: the labeled-only baseline, same loop and augmentation as the SSL methods, no unlabeled data."""
from __future__ import annotations

from dataclasses import dataclass

from engine.methods.base import METHODS, BaseParams, Batch, SSLMethod, StepOutput
from engine.methods.ema import create_teacher, ema_rate, ema_update


@dataclass(frozen=True)
class SupervisedParams(BaseParams):
    # An EMA copy costs one lerp per step; keeping it makes "SSL vs supervised" measure the unlabeled
    # data, not the free weight averaging every SSL method gets.
    ema_teacher: bool = True
    ema_alpha: float = 0.98  # the same free EMA as the SSL methods (DECISIONS: EMA warm-up rule)
    ema_warmup: str = "plan"  # see ema.ema_rate


@METHODS.register("supervised")
class Supervised(SSLMethod):
    """Cross-entropy / BCE on the labeled images only (METHODS §6.2: "consistency terms off")."""

    params_cls = SupervisedParams

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.params.ema_teacher:
            self.teacher = create_teacher(self.student)

    def train_step(self, batch: Batch) -> StepOutput:
        return self.supervised_step(batch)

    def after_step(self, step: int) -> None:
        if self.teacher is not None:
            rate = ema_rate(step, self.params.ema_alpha, self.params.ema_warmup, self.planned_steps())
            ema_update(self.teacher, self.student, rate, buffers=True)
