"""seg_mean_teacher: Mean Teacher for segmentation (Tarvainen & Valpola 2017, https://arxiv.org/abs/1703.01780;
per-pixel form as in Yu et al. UA-MT, https://arxiv.org/abs/1907.07034), the baseline SECL builds on.

Reuses MeanTeacher's plan (warm start, sigmoid ramp), teacher pass and EMA; only the views and losses are
per pixel: the student's strong view and the teacher's weak view share one geometric draw, so pixels align.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.methods.base import METHODS, Batch, StepOutput
from engine.methods.losses import consistency_mse
from engine.methods.mean_teacher import MeanTeacher, MeanTeacherParams
from engine.methods.seg_losses import seg_supervised_loss
from engine.methods.seg_supervised import SegSteps


@dataclass(frozen=True)
class SegMeanTeacherParams(MeanTeacherParams):
    dice_weight: float = 1.0  # L_sup = CE + dice_weight * Dice
    warmup_fraction: float = 0.1  # [design] METHODS §4.2: supervised warm-up over 10 % of training
    lambda_max: float = 0.1  # [design] per-pixel softmax MSE; UA-MT's 0.1 (its MSE is a full mean too)
    # [design] the ramp ends at 40 % of the run: 0.1 + 0.34 * 0.9 ~ 0.4 (METHODS §4.2 step 6)
    rampup_fraction: float = 0.34
    rampup_min_steps: int = 50
    consistency_on: str = "all"  # labeled images join the consistency term (their two views coincide)
    teacher_mode: str = "eval"  # train mode was measured for classification only (DECISIONS: teacher in train mode)
    ema_alpha: float = 0.99  # METHODS §4.1; 0.98 was measured for classification only


@METHODS.register("seg_mean_teacher")
class SegMeanTeacher(SegSteps, MeanTeacher):
    """Student on a strong view, EMA teacher on a weak view; L = L_sup + lambda(t) * pixel MSE(p_S, p_T)."""

    params_cls = SegMeanTeacherParams

    def train_step(self, batch: Batch) -> StepOutput:
        if batch.step < self.ssl_start:
            return self.supervised_step(batch)
        gen, n_lab = batch.gen, batch.labeled.shape[0]
        labeled_view, masks = self.paired.weak(batch.labeled, batch.targets, gen)  # (nL, C, H, W), (nL, H, W)
        student_unl, teacher_unl = self.paired.two_views(batch.unlabeled, gen)
        with_labeled = self.params.consistency_on == "all"
        teacher_out = self.teacher_forward(torch.cat([labeled_view, teacher_unl]) if with_labeled else teacher_unl)
        self.student.train()
        student_out = self.student_forward(torch.cat([labeled_view, student_unl]))
        sup = seg_supervised_loss(student_out["logits"][:n_lab], masks, self.class_weight, self.params.dice_weight)
        first = 0 if with_labeled else n_lab
        unknown = masks.new_full((batch.unlabeled.shape[0], *masks.shape[-2:]), -1)
        labels = torch.cat([masks, unknown])[first:]  # (rows, H, W): ground truth where there is one
        terms = self.unsupervised_terms({k: v[first:] for k, v in student_out.items()}, teacher_out, labels, gen)
        weight = float(self.weights[batch.step])
        loss = sup + weight * sum(terms.values())
        logs = {"loss_sup": float(sup.detach()), "weight": weight}
        logs.update({f"loss_{k}": float(v.detach()) for k, v in terms.items()})
        return StepOutput(loss, logs)

    def unsupervised_terms(self, student_out: dict, teacher_out: dict, labels: torch.Tensor | None = None,
                           gen: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Per-pixel softmax MSE, mean over pixels and classes. labels: ground truth of the rows that have it."""
        return {"cons": consistency_mse(student_out["logits"], teacher_out["logits"], "multiclass")}
