"""The one EMA teacher implementation (METHODS §0.1, pitfalls P5/P14)."""
from __future__ import annotations

import copy

import torch
from torch import nn


def create_teacher(student: nn.Module) -> nn.Module:
    """An exact copy of the student that never receives gradients."""
    teacher = copy.deepcopy(student)
    for param in teacher.parameters():
        param.requires_grad_(False)
    return teacher


def ema_rate(step: int, alpha: float, warmup: str = "mt", total_steps: int | None = None) -> float:
    """Averaging rate at global step t (from 0).

    plan: min(1 - 1/(t+1), alpha, 1 - 4/T) for a run of T planned steps — the default (issue 16 §1). A true
          running mean early on, the configured alpha from step 1/(1-alpha) - 1 (99 at 0.99) in any run of
          T >= 4/(1-alpha) steps, and in shorter runs a horizon of a quarter of the run, so a 26-step run's
          teacher is not the average of its whole trajectory, random init included;
    mt:   min(1 - 1/(t+1), alpha), MT and SRC-MT code (METHODS §0.1): the same without the short-run cap;
    tf:   min((1+t)/(10+t), alpha), TensorFlow's num_updates form, the first slice's default: it reaches
          0.99 only at step 890, so a 588-step run never averaged at its configured rate;
    none: constant alpha (S2MTS2 fine-tuning).
    """
    if warmup == "plan":
        cap = 1.0 - 4.0 / total_steps if total_steps else alpha
        return max(0.0, min(1.0 - 1.0 / (step + 1), alpha, cap))
    if warmup == "mt":
        return min(1.0 - 1.0 / (step + 1), alpha)
    if warmup == "tf":
        return min((1.0 + step) / (10.0 + step), alpha)
    return alpha


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, rate: float, buffers: bool) -> None:
    """teacher <- rate * teacher + (1 - rate) * student.

    `buffers=False` (MT/SRC-MT) averages parameters only; float buffers (BN statistics) then come from the
    teacher's own train-mode passes. `buffers=True` (S2MTS2) averages every float buffer as well.
    Integer buffers (num_batches_tracked) are always copied, never averaged.
    """
    t_params = [p for p in teacher.parameters()]
    s_params = [p.detach() for p in student.parameters()]
    torch._foreach_lerp_(t_params, s_params, 1.0 - rate)
    for t_buf, s_buf in zip(teacher.buffers(), student.buffers()):
        if not torch.is_floating_point(t_buf):
            t_buf.copy_(s_buf)
        elif buffers:
            t_buf.lerp_(s_buf, 1.0 - rate)


@torch.no_grad()
def copy_into(teacher: nn.Module, student: nn.Module) -> None:
    """Reset the teacher to the student's exact state (start of an SSL phase, S2MTS2 stage 2)."""
    teacher.load_state_dict(student.state_dict())
