"""seg_supervised: the labeled-only segmentation baseline (CE + Dice), same loop and views as the SSL methods."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from engine.loaders.paired import PairedViews
from engine.methods.base import METHODS, BaseParams, Batch, SSLMethod, StepOutput
from engine.methods.ema import create_teacher, ema_rate, ema_update
from engine.methods.seg_losses import seg_supervised_loss


class SegSteps:
    """The supervised half every segmentation method shares: paired weak view of image and mask, CE + Dice."""

    tasks: ClassVar[tuple[str, ...]] = ("segmentation",)

    @property
    def paired(self) -> PairedViews:
        return PairedViews(self.views, self.num_classes)

    def supervised_step(self, batch: Batch) -> StepOutput:
        self.student.train()
        view, masks = self.paired.weak(batch.labeled, batch.targets, batch.gen)
        loss = seg_supervised_loss(self.student_forward(view)["logits"], masks, self.class_weight, self.params.dice_weight)
        return StepOutput(loss, {"loss_sup": float(loss.detach())})


@dataclass(frozen=True)
class SegSupervisedParams(BaseParams):
    dice_weight: float = 1.0  # L_sup = CE + dice_weight * Dice (METHODS §4.2)
    # The free EMA copy, as in `supervised`: "SSL vs supervised" then measures the unlabeled data only.
    ema_teacher: bool = True
    ema_alpha: float = 0.99
    ema_warmup: str = "tf"  # see ema.ema_rate


@METHODS.register("seg_supervised")
class SegSupervised(SegSteps, SSLMethod):
    """CE + Dice on the labeled images only (METHODS §4.2 step 2.1, consistency terms off)."""

    params_cls = SegSupervisedParams

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.params.ema_teacher:
            self.teacher = create_teacher(self.student)

    def train_step(self, batch: Batch) -> StepOutput:
        return self.supervised_step(batch)

    def after_step(self, step: int) -> None:
        if self.teacher is not None:
            rate = ema_rate(step, self.params.ema_alpha, self.params.ema_warmup)
            ema_update(self.teacher, self.student, rate, buffers=True)
