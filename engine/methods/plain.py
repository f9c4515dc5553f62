"""plain: the simplest competent supervised loop, as a reference row (issue 16 §0) — ours, not a paper's.

Labeled images only, horizontal flips only, no EMA copy, the loop's Adam + cosine + best-val selection. A
recipe that loses to this under the same budget shows up in `bench ssl`'s table (it once beat our supervised
model by 3.5 points on a 4-class set).
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.methods.base import METHODS, BaseParams, Batch, SSLMethod, StepOutput
from engine.methods.losses import supervised_loss


@dataclass(frozen=True)
class PlainParams(BaseParams):
    pass


@METHODS.register("plain")
class Plain(SSLMethod):
    """Cross-entropy / BCE on flipped labeled images; the student is the only model."""

    params_cls = PlainParams

    def train_step(self, batch: Batch) -> StepOutput:
        self.student.train()
        logits = self.student_forward(self.views.flipped(batch.labeled, batch.gen))["logits"]
        loss = supervised_loss(logits, batch.targets, self.task, self.class_weight)
        return StepOutput(loss, {"loss_sup": float(loss.detach())})
