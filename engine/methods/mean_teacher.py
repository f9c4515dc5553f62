"""mean_teacher: Tarvainen & Valpola 2017, https://arxiv.org/abs/1703.01780 (METHODS §1).

Our CPU-scale defaults (CONTRACTS §6, "SSL must pay for its compute"): a supervised warm-start phase
(no unlabeled forward, the EMA teacher already tracking; 0 when the run starts from the supervised shadow),
then consistency with the teacher run in train mode as the MT code does (measured better on val than eval
mode, DECISIONS: teacher in train mode) and a strong student view of the unlabeled images.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from engine.methods.base import METHODS, BaseParams, Batch, Plan, SSLMethod, StepOutput
from engine.methods.ema import create_teacher, ema_rate, ema_update
from engine.methods.losses import consistency_kl, consistency_mse, supervised_loss
from engine.methods.ramps import weight_schedule


@dataclass(frozen=True)
class MeanTeacherParams(BaseParams):
    warmup_fraction: float = 0.3  # supervised-only steps first (DECISIONS: supervised warm-up)
    ema_alpha: float = 0.98  # METHODS §8's 0.97-0.99 range; 0.98 measured on val (DECISIONS: EMA warm-up rule)
    ema_warmup: Literal["plan", "mt", "tf", "none"] = "plan"  # ema.ema_rate (DECISIONS: EMA warm-up rule)
    ema_buffers: bool | None = None  # None: average BN buffers iff the teacher runs in eval mode (P5)
    teacher_mode: Literal["eval", "train"] = "train"  # batch BN stats + dropout, as MT code (DECISIONS: teacher in train mode)
    consistency: Literal["mse", "kl"] = "mse"  # mean over samples and classes (P13)
    # METHODS §8 suggests 1 for the class-averaged probability MSE; measured on chest 64 px, 5 % labels, val
    # AUC after 6 epochs: supervised 0.9838, lambda 1: 0.9860, 10: 0.9892, 30: 0.9887 (DECISIONS: λ_max = 10)
    lambda_max: float = 10.0
    rampup_fraction: float = 0.3  # sigmoid ramp over this fraction of the SSL phase
    # ...but never steeper than this many steps (capped by the SSL phase): a 24-step run with a 5-step ramp to
    # lambda 10 collapsed (300 chest images, 2 epochs: val AUC 0.96 -> 0.80); long runs are unaffected
    rampup_min_steps: int = 100
    rampup_epochs: float | None = None  # paper configs: ramp length in epochs (overrides the fraction)
    ramp_kind: Literal["sigmoid", "linear"] = "sigmoid"
    ramp_per_epoch: bool = False  # MT/SRC-MT code advance the ramp by integer epochs
    gate_epochs: int | None = None  # SRC-MT code: no unsupervised term until this many epochs (P3)
    student_view: Literal["strong", "weak"] = "strong"  # student's unlabeled view (DECISIONS: strong student view)
    consistency_on: Literal["all", "unlabeled"] = "all"  # MT: all N images; S2MTS2 code: unlabeled only
    weighted_consistency: bool = False  # SRC-MT ISIC code multiplies the MSE by the class weights (P2)
    consistency_sum_classes: bool = False  # SRC-MT code: squared gap summed over classes (mean over samples)
    same_view: bool = False  # S2MTS2 code: the teacher sees the student's own view of each image


@METHODS.register("mean_teacher")
class MeanTeacher(SSLMethod):
    """Student on a strong view, EMA teacher on a weak view; L = L_sup + lambda(t) * MSE(p_S, p_T)."""

    params_cls = MeanTeacherParams
    uses_teacher = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.teacher = create_teacher(self.student)
        self.ssl_start = 0
        self.weights = np.zeros(0)

    def set_plan(self, plan: Plan) -> None:
        super().set_plan(plan)
        self.plan_consistency(plan, offset=0)

    def plan_consistency(self, plan: Plan, offset: int) -> None:
        """Warm start, then the consistency ramp, over steps [offset, total) (S2MTS2 passes its stage 2)."""
        p, spe = self.params, plan.steps_per_epoch
        self.ssl_start = offset + round(p.warmup_fraction * (plan.total_steps - offset))
        ssl_steps = plan.total_steps - self.ssl_start
        ramp = round(p.rampup_epochs * spe) if p.rampup_epochs is not None else \
            min(ssl_steps, max(round(p.rampup_fraction * ssl_steps), p.rampup_min_steps))
        gate = None if p.gate_epochs is None else self.ssl_start + p.gate_epochs * spe
        self.weights = p.lambda_max * weight_schedule(plan.total_steps, self.ssl_start, ramp, p.ramp_kind,
                                                      spe if p.ramp_per_epoch else None, gate)

    def phase_fractions(self) -> list[tuple[str, float]]:
        phases = [("consistency", self.params.warmup_fraction)]
        return ([("warm_start", 0.0)] if self.params.warmup_fraction > 0 else []) + phases

    def needs_unlabeled(self, step: int) -> bool:
        return step >= self.ssl_start

    def train_step(self, batch: Batch) -> StepOutput:
        if batch.step < self.ssl_start:
            return self.supervised_step(batch)
        n_lab, gen = batch.labeled.shape[0], batch.gen
        # consistency over all N images (MT) or the unlabeled ones only, whose teacher pass is then all we run
        first = n_lab if self.params.consistency_on == "unlabeled" else 0
        images = torch.cat([batch.labeled, batch.unlabeled])  # (N, C, H, W) uint8
        student_view = torch.cat([self.views.weak(batch.labeled, gen),
                                  self.views.make(self.params.student_view, batch.unlabeled, gen)])
        teacher_view = student_view[first:] if self.params.same_view else self.views.weak(images[first:], gen)
        teacher_out = self.teacher_forward(teacher_view)
        self.student.train()
        student_out = self.student_forward(student_view)
        sup = supervised_loss(student_out["logits"][:n_lab], batch.targets, self.task, self.class_weight)
        terms = self.unsupervised_terms({k: v[first:] for k, v in student_out.items()}, teacher_out)
        weight = float(self.weights[batch.step])
        loss = sup + weight * sum(terms.values())
        logs = {"loss_sup": float(sup.detach()), "weight": weight}
        logs.update({f"loss_{k}": float(v.detach()) for k, v in terms.items()})
        return StepOutput(loss, logs)

    def unsupervised_terms(self, student_out: dict, teacher_out: dict) -> dict[str, torch.Tensor]:
        """Prediction consistency on matching rows; subclasses add their own terms (all scaled by lambda(t))."""
        s_logits, t_logits = student_out["logits"], teacher_out["logits"]
        if self.params.consistency == "kl":
            return {"cons": consistency_kl(s_logits, t_logits, self.task)}
        weights = self.class_weight if self.params.weighted_consistency else None
        return {"cons": consistency_mse(s_logits, t_logits, self.task, weights, self.params.consistency_sum_classes)}

    def teacher_forward(self, view: torch.Tensor) -> dict[str, torch.Tensor]:
        """No gradient ever; eval mode runs under inference_mode (cheapest), train mode under no_grad."""
        assert self.teacher is not None
        if self.params.teacher_mode == "eval":
            self.teacher.eval()
            with torch.inference_mode():
                out = self.teacher(view)
            return {k: v.clone() for k, v in out.items()}  # normal tensors again, safe inside autograd
        self.teacher.train()
        with torch.no_grad():
            return self.teacher(view)

    def after_step(self, step: int) -> None:
        p = self.params
        buffers = p.teacher_mode == "eval" if p.ema_buffers is None else p.ema_buffers
        # In the warm-start phase the teacher makes no passes of its own, so its BN buffers are averaged too.
        rate = ema_rate(step, p.ema_alpha, p.ema_warmup, self.planned_steps())
        ema_update(self.teacher, self.student, rate, buffers=buffers or step < self.ssl_start)
