"""seg_unimatch: UniMatch, Yang et al. CVPR 2023, https://arxiv.org/abs/2208.09910 — ours, beyond the seed papers.

Weak-to-strong pixel pseudo-labels with two strong views and a feature-perturbation stream. The weak view's
pseudo-labels (confidence >= tau) supervise (1) two independent strong views of the same pixels (intensity,
noise, cutout, each CutMixed with another image of the batch, pseudo-labels mixed alike) and (2) the decoder
run on dropout-perturbed encoder features of the weak view itself. As in our FixMatch, the pseudo-labeller is
the EMA teacher (UniMatch uses the student under no-grad); it is also what selection looks at.
L = L_sup + lambda(t) * (w_s (l_s1 + l_s2) / 2 + w_fp l_fp), with UniMatch's 0.5 / 0.5 split.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.methods.base import METHODS, Batch, StepOutput
from engine.methods.seg_losses import seg_supervised_loss
from engine.methods.seg_mean_teacher import SegMeanTeacher, SegMeanTeacherParams


@dataclass(frozen=True)
class SegUniMatchParams(SegMeanTeacherParams):
    threshold: float = 0.95  # tau (UniMatch's value for natural and medical images)
    lambda_max: float = 1.0  # unsupervised weight (UniMatch: 1, no ramp beyond our shared sigmoid ramp)
    strong_weight: float = 0.5  # share of the two strong-view losses (0.25 each)
    fp_weight: float = 0.5  # share of the feature-perturbation loss
    fp_dropout: float = 0.5  # channel dropout on every encoder stage (UniMatch's nn.Dropout2d(0.5))
    cutmix_prob: float = 0.5  # each strong view is CutMixed with this probability (UniMatch: 0.5)


@METHODS.register("seg_unimatch")
class SegUniMatch(SegMeanTeacher):
    params_cls = SegUniMatchParams

    def train_step(self, batch: Batch) -> StepOutput:
        if batch.step < self.ssl_start or batch.unlabeled.shape[0] == 0:
            return self.supervised_step(batch)
        p, gen, n_lab = self.params, batch.gen, batch.labeled.shape[0]
        labeled_view, masks = self.paired.weak(batch.labeled, batch.targets, gen)
        weak = self.paired.weak_unlabeled(batch.unlabeled, gen)  # [0, 1], weak geometry
        teacher_probs = self.teacher_forward(self.paired.normalise(weak))["logits"].float().softmax(dim=1)
        confidence, pseudo = teacher_probs.max(dim=1)  # (nU, H, W)
        pseudo = pseudo.masked_fill(confidence < p.threshold, -1)
        strong_views, strong_targets = zip(*(self._strong(weak, pseudo, gen) for _ in range(2)))
        self.student.train()
        n_unl = weak.shape[0]
        # one student pass: labeled, weak (its perturbed-feature decode only) and both strong views
        out = self.student_forward(torch.cat([labeled_view, self.paired.normalise(weak), *strong_views]),
                                   fp_dropout=p.fp_dropout, fp_rows=(n_lab, n_lab + n_unl))
        sup = seg_supervised_loss(out["logits"][:n_lab], masks, self.class_weight, p.dice_weight)
        start = n_lab + n_unl
        losses = [_masked_ce(out["logits"][start + i * n_unl: start + (i + 1) * n_unl], strong_targets[i])
                  for i in range(2)]
        fp = _masked_ce(out["fp_logits"], pseudo)
        unsup = p.strong_weight * (losses[0] + losses[1]) / 2 + p.fp_weight * fp
        weight = float(self.weights[batch.step])
        logs = {"loss_sup": float(sup.detach()), "loss_s1": float(losses[0].detach()),
                "loss_s2": float(losses[1].detach()), "loss_fp": float(fp.detach()), "weight": weight,
                "mask_rate": float((pseudo >= 0).float().mean())}
        return StepOutput(sup + weight * unsup, logs)

    def _strong(self, weak: torch.Tensor, pseudo: torch.Tensor, gen: torch.Generator
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """One strong view (intensity, noise, cutout) CutMixed with a shuffled copy of the batch, both ways."""
        x = self.paired.strong_intensity(weak, gen)
        target = pseudo.clone()
        n, _, h, w = x.shape
        if n > 1 and float(torch.rand((), generator=gen, device=gen.device)) < self.params.cutmix_prob:
            order = torch.randperm(n, generator=gen, device=gen.device).to(x.device)
            box = _cutmix_box(h, w, gen).to(x.device)  # (H, W) bool
            x = torch.where(box, x[order], x)
            target = torch.where(box, pseudo[order], target)
        return self.paired.normalise(x), target


def _cutmix_box(h: int, w: int, gen: torch.Generator) -> torch.Tensor:
    """A random rectangle covering 2-40 % of the image, aspect ratio 0.3-3.3 (UniMatch's obtain_cutmix_box)."""
    r = torch.rand(4, generator=gen, device=gen.device).tolist()
    area = (0.02 + 0.38 * r[0]) * h * w
    ratio = math.exp(math.log(0.3) + (math.log(1 / 0.3) - math.log(0.3)) * r[1])
    bh, bw = min(h, max(1, int((area * ratio) ** 0.5))), min(w, max(1, int((area / ratio) ** 0.5)))
    y0, x0 = int(r[2] * (h - bh + 1)), int(r[3] * (w - bw + 1))
    box = torch.zeros(h, w, dtype=torch.bool)
    box[y0:y0 + bh, x0:x0 + bw] = True
    return box


def _masked_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Pixel CE against pseudo-labels, -1 (not confident) ignored, averaged over ALL pixels (UniMatch)."""
    if logits.shape[0] == 0:
        return logits.sum() * 0.0
    per_pixel = F.cross_entropy(logits.float(), target.clamp(min=0), reduction="none")
    return (per_pixel * (target >= 0)).mean()
