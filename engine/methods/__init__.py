"""SSL methods; importing this package registers every method in METHODS (key = file name)."""
from engine.methods import mean_teacher, s2mts2, src_mt, supervised  # noqa: F401  (registration)
from engine.methods.base import METHODS, Batch, Plan, SSLMethod, StepOutput

__all__ = ["METHODS", "Batch", "Plan", "SSLMethod", "StepOutput"]
