"""secl: Self-Ensembling Contrastive Learning, Xiang et al. 2021, https://arxiv.org/abs/2105.12924 (METHODS §4).

Segmentation Mean Teacher whose unsupervised term is a feature-level InfoNCE on the projected 1/4-resolution
decoder feature: student embeddings of a strong view against teacher embeddings of a weak view with the same
geometry. The teacher averages the student ENCODER only (the abstract); its decoder and head are exact copies
of the student's, so "teacher encoder -> student decoder -> head under no-grad" is one teacher forward.
`ema_scope='full'` averages the whole network instead. No public code: every default here is [design].
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from engine.methods.base import METHODS
from engine.methods.ema import ema_rate, ema_update
from engine.methods.losses import consistency_mse
from engine.methods.seg_losses import anatomical_contrast, downsample_mask, pseudo_labels, region_contrast
from engine.methods.seg_mean_teacher import SegMeanTeacher, SegMeanTeacherParams


@dataclass(frozen=True)
class SECLParams(SegMeanTeacherParams):
    sampling: Literal["anatomical", "region"] = "anatomical"  # variant B (the paper's better one) / variant A
    tau: float = 0.1  # InfoNCE temperature
    grid: int = 4  # region-aware: G x G cells
    confidence: float = 0.9  # anatomical-aware: pseudo-labels below this teacher confidence are never sampled
    n_anchor: int = 256  # anchors per class per batch
    n_neg: int = 512  # negatives per class per batch (plus the other class prototypes)
    labeled_in_contrast: bool = True  # labeled images join with ground truth instead of pseudo-labels
    ema_scope: Literal["encoder", "full"] = "encoder"  # encoder: the abstract; full: EMA pseudo-label network
    ema_alpha: float = 0.99  # METHODS §4.1
    lambda_max: float = 0.1  # METHODS §4.2 step 6, ramp ends at 40 % of the run (see SegMeanTeacherParams)
    consistency_weight: float = 0.0  # optional extra pixel softmax MSE (relative to the contrastive term)


@METHODS.register("secl")
class SECL(SegMeanTeacher):
    """L = L_sup + lambda(t) * (L_con + consistency_weight * MSE); region- or anatomical-aware sampling."""

    params_cls = SECLParams

    def unsupervised_terms(self, student_out: dict, teacher_out: dict, labels: torch.Tensor | None = None,
                           gen: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        p = self.params
        s_emb, t_emb = student_out["proj"], teacher_out["proj"]  # (N, d, h, w), unit length per pixel
        if p.sampling == "region":
            terms = {"con": region_contrast(s_emb, t_emb, p.grid, p.tau)}
        else:
            size = tuple(s_emb.shape[-2:])
            targets = pseudo_labels(teacher_out["logits"], size, p.confidence)  # (N, h, w), -1 = not confident
            if p.labeled_in_contrast and labels is not None:
                truth = downsample_mask(labels, size)
                targets = torch.where(truth >= 0, truth, targets)
            terms = {"con": anatomical_contrast(s_emb, t_emb, targets, p.tau, p.n_anchor, p.n_neg, gen)}
        if p.consistency_weight > 0:
            mse = consistency_mse(student_out["logits"], teacher_out["logits"], "multiclass")
            terms["cons"] = p.consistency_weight * mse
        return terms

    def after_step(self, step: int) -> None:
        p = self.params
        rate = ema_rate(step, p.ema_alpha, p.ema_warmup, self.planned_steps())
        buffers = p.teacher_mode == "eval" if p.ema_buffers is None else p.ema_buffers
        buffers = buffers or step < self.ssl_start  # no teacher passes of its own during warm-up
        ema_update(self.teacher.encoder, self.student.encoder, rate, buffers=buffers)
        head_rate = rate if p.ema_scope == "full" else 0.0  # 0: exact copy of the student's decoder and head
        for name in ("decoder", "projector"):
            ema_update(getattr(self.teacher, name), getattr(self.student, name), head_rate,
                       buffers=buffers or head_rate == 0.0)
