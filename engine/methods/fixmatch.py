"""fixmatch: Sohn et al. NeurIPS 2020, https://arxiv.org/abs/2001.07685 — ours, beyond the seed papers.

Confidence-thresholded pseudo-labels from a weak view, cross-entropy on a RandAugment-style strong view of
the same images. The pseudo-labeller is the EMA teacher (as USB's `ema_p` option), not the student: it is
steadier on the short runs of a labeling loop, and it is the model selection looks at. Multi-label: one
threshold per label on the sigmoid, confident when p >= tau (positive) or p <= 1 - tau (negative).
L = L_sup + lambda_u(t) * mean_i(mask_i * CE(student(strong_i), pseudo_i)).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.methods.base import METHODS, Batch, StepOutput
from engine.methods.losses import supervised_loss
from engine.methods.mean_teacher import MeanTeacher, MeanTeacherParams


@dataclass(frozen=True)
class FixMatchParams(MeanTeacherParams):
    threshold: float = 0.95  # tau (FixMatch)
    lambda_max: float = 1.0  # lambda_u (FixMatch)
    rampup_fraction: float = 0.0  # the threshold is the curriculum; no ramp (FixMatch)
    rampup_min_steps: int = 0
    randaugment_ops: int = 2  # N of RandAugment
    randaugment_magnitude: float = 1.0  # fraction of each op's range (FixMatch samples magnitudes at random)
    teacher_mode: str = "eval"  # pseudo-labels from the EMA model without dropout noise (USB's ema_p)


@METHODS.register("fixmatch")
class FixMatch(MeanTeacher):
    """Student on weak labeled + strong unlabeled views; the EMA teacher labels the weak unlabeled view."""

    params_cls = FixMatchParams

    def train_step(self, batch: Batch) -> StepOutput:
        if batch.step < self.ssl_start:
            return self.supervised_step(batch)
        p, gen, n_lab = self.params, batch.gen, batch.labeled.shape[0]
        teacher_logits = self.teacher_forward(self.views.weak(batch.unlabeled, gen))["logits"].float()
        strong = self.views.randaugment(batch.unlabeled, gen, p.randaugment_ops, p.randaugment_magnitude)
        self.student.train()
        logits = self.student_forward(torch.cat([self.views.weak(batch.labeled, gen), strong]))["logits"]
        sup = supervised_loss(logits[:n_lab], batch.targets, self.task, self.class_weight)
        unsup, mask_rate = pseudo_label_loss(logits[n_lab:], teacher_logits, self.task, p.threshold)
        weight = float(self.weights[batch.step])
        logs = {"loss_sup": float(sup.detach()), "loss_pseudo": float(unsup.detach()), "weight": weight,
                "mask_rate": mask_rate}
        return StepOutput(sup + weight * unsup, logs)


def pseudo_label_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, task: str,
                      threshold: float) -> tuple[torch.Tensor, float]:
    """Masked hard pseudo-label loss, averaged over ALL unlabeled rows (FixMatch), and the kept fraction."""
    student_logits = student_logits.float()
    if student_logits.shape[0] == 0:
        return student_logits.sum() * 0.0, 0.0
    if task == "multiclass":
        confidence, pseudo = teacher_logits.softmax(dim=1).max(dim=1)
        mask = (confidence >= threshold).float()
        loss = (F.cross_entropy(student_logits, pseudo, reduction="none") * mask).mean()
        return loss, float(mask.mean())
    prob = torch.sigmoid(teacher_logits)
    mask = ((prob >= threshold) | (prob <= 1.0 - threshold)).float()  # per label
    target = (prob >= 0.5).float()
    loss = (F.binary_cross_entropy_with_logits(student_logits, target, reduction="none") * mask).mean()
    return loss, float(mask.mean())
