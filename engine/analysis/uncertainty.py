"""Per-image uncertainty scores from predicted probabilities (pure numpy; no torch, no db).

Every score is float32, shape (N,), in [0, 1], and larger means more uncertain, so a strategy can
sort any of them descending without knowing which one it holds.
"""
from __future__ import annotations

import numpy as np

TASKS = ("multiclass", "multilabel")
_EPS = 1e-12


def _check(probs: np.ndarray, task: str) -> np.ndarray:
    """Validate shape/task and clip to [0, 1] so log() and the formulas below never see NaN."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"probs must be (N, C), got shape {p.shape}")
    if task == "multiclass" and p.shape[1] < 2:
        raise ValueError("multiclass probs need at least 2 columns")
    return np.clip(np.nan_to_num(p, nan=0.0), 0.0, 1.0)


def _binary_entropy(p: np.ndarray) -> np.ndarray:
    """Elementwise binary entropy in bits (so it is already normalised to [0, 1])."""
    q = 1.0 - p
    return -(p * np.log2(np.maximum(p, _EPS)) + q * np.log2(np.maximum(q, _EPS)))


def entropy(probs: np.ndarray, task: str) -> np.ndarray:
    """Multiclass: H(p) / log C. Multilabel: mean over labels of the binary entropy / log 2."""
    p = _check(probs, task)
    if task == "multilabel":
        return _binary_entropy(p).mean(axis=1).astype(np.float32)
    h = -(p * np.log(np.maximum(p, _EPS))).sum(axis=1)
    return np.clip(h / np.log(p.shape[1]), 0.0, 1.0).astype(np.float32)


def margin(probs: np.ndarray, task: str) -> np.ndarray:
    """Multiclass: 1 - (p_top1 - p_top2). Multilabel: 1 - mean |2p - 1| (per-label margin)."""
    p = _check(probs, task)
    if task == "multilabel":
        return (1.0 - np.abs(2.0 * p - 1.0).mean(axis=1)).astype(np.float32)
    top2 = np.sort(p, axis=1)[:, -2:]  # (N, 2) ascending
    return np.clip(1.0 - (top2[:, 1] - top2[:, 0]), 0.0, 1.0).astype(np.float32)


def least_confidence(probs: np.ndarray, task: str) -> np.ndarray:
    """Multiclass: 1 - max p (at most (C-1)/C). Multilabel: mean of 1 - max(p, 1-p) (at most 0.5)."""
    p = _check(probs, task)
    if task == "multilabel":
        return (1.0 - np.maximum(p, 1.0 - p)).mean(axis=1).astype(np.float32)
    return (1.0 - p.max(axis=1)).astype(np.float32)


def disagreement(probs: np.ndarray, teacher_probs: np.ndarray, task: str) -> np.ndarray:
    """Teacher-student disagreement, in [0, 1].

    Normalisation: d = mean_c |p_student - p_teacher| * s, with s = C/2 for multiclass (so d is the
    total-variation distance 0.5 * sum_c |dp|, which is 1 for disjoint one-hots) and s = 1 for
    multilabel (each label's |dp| is already in [0, 1]).
    """
    p = _check(probs, task)
    t = _check(teacher_probs, task)
    if p.shape != t.shape:
        raise ValueError(f"teacher probs {t.shape} do not match student probs {p.shape}")
    d = np.abs(p - t).mean(axis=1)
    if task == "multiclass":
        d = d * (p.shape[1] / 2.0)
    return np.clip(d, 0.0, 1.0).astype(np.float32)


def scores(probs: np.ndarray, task: str, teacher_probs: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """All scores for one checkpoint; 'disagreement' only when a teacher exists (key absent otherwise)."""
    out = {
        "entropy": entropy(probs, task),
        "margin": margin(probs, task),
        "least_confidence": least_confidence(probs, task),
    }
    if teacher_probs is not None:
        out["disagreement"] = disagreement(probs, teacher_probs, task)
    return out
