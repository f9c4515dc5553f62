"""Typed run configuration: frozen dataclasses, saved as JSON on the Job row and inside checkpoints."""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class AugConfig:
    """Batched tensor augmentation. `weak` feeds the teacher and labeled images; `strong` the student's unlabeled view.

    The weak view is flips only (DECISIONS: weak view = flips): decided on val AUC for the supervised baseline and
    S²MTS² (docs/results/defaults_chest64_*_weak_view). Segmentation keeps the affine jitter (SEGMENTATION_AUG):
    without it val Dice fell on PH2 for both the U-Net and SECL (docs/results/defaults_ph2_*_weak_view).
    """

    hflip: bool = True  # chest/skin images tolerate mirroring (both papers flip)
    weak_rotate_deg: float = 0.0  # SRC-MT's paper config keeps RandomAffine(10) (engine/configs/papers.py)
    weak_translate: float = 0.0
    weak_scale: tuple[float, float] = (1.0, 1.0)
    strong_rotate_deg: float = 15.0
    strong_translate: float = 0.08
    strong_scale: tuple[float, float] = (0.85, 1.15)
    strong_brightness: float = 0.25  # additive, in units of the [0, 1] intensity range
    strong_contrast: float = 0.35  # multiplicative factor drawn from [1 - c, 1 + c]
    strong_noise_std: float = 0.03
    strong_erase_prob: float = 0.5  # one random rectangle (cutout) per image
    strong_erase_frac: float = 0.25  # max side of the rectangle as a fraction of the image side


# The first slice's weak view (10°, 4 % shift, scale 0.95–1.05): the segmentation default, decided on PH2 val.
SEGMENTATION_AUG = AugConfig(weak_rotate_deg=10.0, weak_translate=0.04, weak_scale=(0.95, 1.05))


@dataclass(frozen=True)
class DataConfig:
    """Batch composition and preprocessing; the mean/std normalise [0, 1] intensities for every channel."""

    image_size: int | None = None  # None: train at the size of the uint8 cache
    labeled_batch: int = 16
    unlabeled_ratio: float = 2.0  # unlabeled items per labeled item in an SSL batch (DECISIONS: unlabeled ratio 2)
    epoch_definition: Literal["pool", "labeled"] = "pool"  # CONTRACTS §6: pool = labeled + unlabeled pass
    mean: float | tuple[float, ...] = 0.5  # scalar, or one value per channel (ImageNet stats for RGB)
    std: float | tuple[float, ...] = 0.25
    aug: AugConfig = field(default_factory=AugConfig)

    @property
    def unlabeled_batch(self) -> int:
        return round(self.labeled_batch * self.unlabeled_ratio)


@dataclass(frozen=True)
class OptimConfig:
    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3  # compact CNN from scratch; the papers' 1e-4 is for ImageNet-initialised DenseNets
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    momentum: float = 0.9  # sgd only
    schedule: Literal["cosine", "constant", "exp_epoch", "poly"] = "cosine"  # over the run's planned iterations
    gamma: float = 0.9  # exp_epoch: lr *= gamma after every epoch (SRC-MT); poly: the power (SECL's 0.9)
    warmup_fraction: float = 0.02  # linear lr warm-up, fraction of planned iterations


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a run. `method_params` holds the method's own dataclass as a dict."""

    method: str = "src_mt"
    backbone: str = "compact_cnn"
    pretrained: bool = False
    epochs: int | None = 12  # pool passes; keeps a 4.6k-image 64 px SSL run ~5 min on one CPU core
    max_steps: int | None = None  # hard cap on iterations (iteration-matched baselines)
    budget_minutes: float | None = None  # plan fixed after timing the first 20 iterations
    seed: int = 0
    patience: int | None = 4  # epochs without val-AUC gain before early stop; None disables
    device: str = "auto"
    amp: bool = True  # CUDA only: bf16 where supported, else fp16
    channels_last: bool = True  # CUDA and CPU (oneDNN's NHWC kernels); not MPS
    eval_batch_size: int = 512
    threshold: float | None = None  # None: argmax (multiclass) / 0.5 (multilabel); SRC-MT paper: 0.18
    auc_classes: tuple[str, ...] | None = None  # classes averaged into macro AUC (ChestX-ray14: 14 diseases)
    select_on: Literal["auto", "teacher", "student"] = "auto"  # auto: teacher where one exists
    num_threads: int | None = None  # CPU threads; None: every usable core (device.default_threads)
    method_params: dict[str, Any] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    def __post_init__(self) -> None:
        """A run must end: a zero budget once read as "no budget" and planned 10**9 epochs (a 15 GiB
        schedule array), so a non-positive bound is an error and at least one bound must be set."""
        for name in ("epochs", "max_steps", "budget_minutes"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0 (got {value!r})")
        if self.epochs is None and self.max_steps is None and self.budget_minutes is None:
            raise ValueError("a run needs epochs, max_steps or budget_minutes")

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainConfig:
        return from_dict(cls, raw)


def to_dict(obj: Any) -> dict[str, Any]:
    """JSON-ready dict (tuples become lists)."""
    return dataclasses.asdict(obj)


def from_dict(cls: type, raw: dict[str, Any]) -> Any:
    """Rebuild a (nested) frozen dataclass; unknown keys are an error so typos never pass silently."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(raw) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = from_dict(hint, value)
        elif isinstance(value, list) and "tuple" in str(hint):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def replace(obj: Any, **changes: Any) -> Any:
    """dataclasses.replace, re-exported so callers need one import."""
    return dataclasses.replace(obj, **changes)
