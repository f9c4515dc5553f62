"""seg_supervised: the labeled-only segmentation baseline (CE + Dice), same loop and views as the SSL methods."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from engine.loaders.paired import PairedViews
from engine.methods.base import METHODS, Batch, StepOutput
from engine.methods.seg_losses import seg_supervised_loss
from engine.methods.supervised import Supervised, SupervisedParams


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
class SegSupervisedParams(SupervisedParams):
    dice_weight: float = 1.0  # L_sup = CE + dice_weight * Dice (METHODS §4.2)
    ema_alpha: float = 0.99  # the segmentation methods' EMA rate (SECL, METHODS §4.1)


@METHODS.register("seg_supervised")
class SegSupervised(SegSteps, Supervised):
    """CE + Dice on the labeled images only (METHODS §4.2 step 2.1, consistency terms off); the free EMA copy,
    train step and EMA update are `supervised`'s, so "SSL vs supervised" measures the unlabeled data only."""

    params_cls = SegSupervisedParams
