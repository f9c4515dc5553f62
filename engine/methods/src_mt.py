"""src_mt: relation-driven self-ensembling, Liu et al. TMI 2020, https://arxiv.org/abs/2005.07377 (METHODS §2).

Mean Teacher plus sample-relation consistency: the row-normalised batch Gram matrices of student and
teacher pooled features must agree. L = L_sup + lambda(t) * (L_cons + beta * L_src).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.methods.base import METHODS
from engine.methods.losses import relation_consistency
from engine.methods.mean_teacher import MeanTeacher, MeanTeacherParams


@dataclass(frozen=True)
class SRCMTParams(MeanTeacherParams):
    beta: float = 1.0  # weight of L_src; L_src = sum_ij / N grows with N, re-tune when N changes (P4)
    relation_centring: bool = False  # centre features before the Gram matrix (ours; off in the paper config)


@METHODS.register("src_mt")
class SRCMT(MeanTeacher):
    """Features are the pooled pre-logit vectors (after the head dropout), over the whole batch."""

    params_cls = SRCMTParams

    def unsupervised_terms(self, student_out: dict, teacher_out: dict) -> dict[str, torch.Tensor]:
        terms = super().unsupervised_terms(student_out, teacher_out)
        terms["relation"] = self.params.beta * relation_consistency(student_out["feat"], teacher_out["feat"],
                                                                      self.params.relation_centring)
        return terms
