"""SSLMethod: one labeled + unlabeled batch in, one loss out (USB-style); the loop lives in engine.training.loop."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from engine.core.registry import Registry
from engine.loaders.transforms import ViewMaker
from engine.methods.losses import supervised_loss

METHODS: Registry[type[SSLMethod]] = Registry("method")


@dataclass
class Batch:
    """uint8 images on the training device; targets (nL,) int64 or (nL, C) float; gen drives augmentation."""

    labeled: torch.Tensor  # (nL, C, H, W) uint8
    targets: torch.Tensor
    unlabeled: torch.Tensor  # (nU, C, H, W) uint8; empty in supervised phases
    step: int
    gen: torch.Generator
    # dataset indices of the rows (the same on every DDP rank for the same image); S2MTS2 masks its own images
    labeled_idx: torch.Tensor | None = None
    unlabeled_idx: torch.Tensor | None = None


@dataclass
class StepOutput:
    loss: torch.Tensor
    logs: dict[str, float]


@dataclass(frozen=True)
class Plan:
    """Fixed before training (after budget calibration); every ramp and schedule is defined over it."""

    total_steps: int
    steps_per_epoch: int


@dataclass(frozen=True)
class BaseParams:
    class_weights: str = "none"  # none | balanced (inverse frequency, mean 1) | srcmt (10000/n_c, P2)


class SSLMethod(nn.Module):
    """Owns student (and teacher); subclasses implement train_step. Registered under its file name."""

    params_cls: ClassVar[type] = BaseParams
    uses_teacher: ClassVar[bool] = False
    tasks: ClassVar[tuple[str, ...]] = ("multiclass", "multilabel")  # data tasks the method trains

    def __init__(self, student: nn.Module, task: str, num_classes: int, views: ViewMaker,
                 params: Any = None, class_counts: np.ndarray | None = None) -> None:
        super().__init__()
        self.student, self.task, self.num_classes, self.views = student, task, num_classes, views
        self.params = coerce_params(self.params_cls, params)
        self.teacher: nn.Module | None = None
        self.plan: Plan | None = None
        weights = class_weights(self.params.class_weights, class_counts)
        self.register_buffer("class_weight", weights, persistent=False)

    # --- planning -------------------------------------------------------------------------------
    def set_plan(self, plan: Plan) -> None:
        """Called once the run's length is fixed; subclasses precompute their ramps here."""
        self.plan = plan

    def planned_steps(self) -> int | None:
        """The run's planned length once fixed (EMA rules cap their horizon by it), else None."""
        return self.plan.total_steps if self.plan is not None else None

    def phase_fractions(self) -> list[tuple[str, float]]:
        """(name, start as a fraction of the run) of each phase with its own step cost.

        The budget planner times one probe step per phase, since a warm-start or pre-training step costs
        differently from a consistency step.
        """
        return [("train", 0.0)]

    def needs_unlabeled(self, step: int) -> bool:
        return False

    def pool_batch(self, step: int) -> bool:
        """True: this step draws one uniform batch over the whole pool instead of labeled + unlabeled streams.

        The batch then arrives as `unlabeled` (labels are not used): self-supervised pre-training sees every
        image equally often, and one epoch is one pool pass.
        """
        return False

    def lr_restarts(self) -> tuple[int, ...]:
        return ()

    # --- training -------------------------------------------------------------------------------
    def use_student_wrapper(self, wrapper: nn.Module | None) -> None:
        """Route the student's gradient forward through `wrapper` (DDP), which owns gradient all-reduce.

        Kept outside the module tree (not a submodule), so state_dict, EMA and checkpoints keep seeing the
        plain student.
        """
        self.__dict__["_student_wrapper"] = wrapper

    def student_forward(self, x: torch.Tensor, **kwargs: Any) -> dict[str, torch.Tensor]:
        """The student pass that receives gradients: via DDP when the loop wrapped it, else the plain module."""
        wrapper = self.__dict__.get("_student_wrapper")
        return (wrapper if wrapper is not None else self.student)(x, **kwargs)

    def train_step(self, batch: Batch) -> StepOutput:
        raise NotImplementedError

    def after_step(self, step: int) -> None:
        """Hook after the optimizer step (EMA updates)."""

    def supervised_step(self, batch: Batch) -> StepOutput:
        """Labeled images only, weak view: the baseline, and the warm-start phase of every SSL method."""
        self.student.train()
        logits = self.student_forward(self.views.weak(batch.labeled, batch.gen))["logits"]
        loss = supervised_loss(logits, batch.targets, self.task, self.class_weight)
        return StepOutput(loss, {"loss_sup": float(loss.detach())})

    def eval_models(self) -> dict[str, nn.Module]:
        models = {"student": self.student}
        if self.teacher is not None:
            models["teacher"] = self.teacher
        return models

    def extra_state(self) -> dict[str, torch.Tensor]:
        """Method state beyond student/teacher (projection heads, queues), for checkpoints."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith(("student.", "teacher."))}


def coerce_params(cls: type, params: Any) -> Any:
    if params is None:
        return cls()
    if isinstance(params, cls):
        return params
    if dataclasses.is_dataclass(params):
        params = dataclasses.asdict(params)
    from engine.core.config import from_dict

    return from_dict(cls, dict(params))


def class_weights(kind: str, counts: np.ndarray | None) -> torch.Tensor | None:
    """CE weights (multiclass) / pos_weight (multilabel); None = unweighted, the clean default (P2)."""
    if kind == "none" or counts is None:
        return None
    counts = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
    if kind == "srcmt":
        return torch.tensor(10000.0 / counts, dtype=torch.float32)
    weights = 1.0 / counts
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)
