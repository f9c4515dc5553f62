"""SSL methods; importing this package registers every method in METHODS (key = file name)."""
from engine.methods import (  # noqa: F401  (registration)
    fixmatch,
    mean_teacher,
    plain,
    s2mts2,
    secl,
    seg_mean_teacher,
    seg_supervised,
    seg_unimatch,
    src_mt,
    supervised,
)
from engine.methods.base import METHODS, Batch, Plan, SSLMethod, StepOutput

__all__ = ["METHODS", "Batch", "Plan", "SSLMethod", "StepOutput"]
