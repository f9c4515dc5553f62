"""Paired bootstrap of a metric difference between two models on the same val images (issue 16 §4).

Resampling images with replacement and scoring both models on the same resample keeps the pairing: the CI
is of "SSL minus supervised on images like these", not of two independent estimates. AUC is computed from
ranks (ties averaged) so 1,000 resamples of a few thousand images take well under a second per class.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PairedDelta:
    metric: str  # "auc" | "dice"
    value_a: float  # the model compared (SSL) on all val images
    value_b: float  # the reference (supervised shadow)
    delta: float  # value_a - value_b
    ci95: tuple[float, float]  # percentile interval of the resampled deltas
    n: int  # val images
    resamples: int  # resamples with a defined delta (single-class resamples have no AUC)


def binary_auc(truth: np.ndarray, score: np.ndarray) -> float:
    """Mann-Whitney AUC; NaN when only one class is present."""
    truth = np.asarray(truth, dtype=bool)
    n_pos = int(truth.sum())
    n_neg = truth.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    from scipy.stats import rankdata  # lazy: scipy.stats costs ~1.7 s at import, and the worker imports this

    ranks = rankdata(score)
    return float((ranks[truth].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def summary_auc(probs: np.ndarray, labels: np.ndarray, task: str) -> float:
    """The AUC the product reports (engine.scoring.metrics): positive class of two, else macro over classes."""
    probs = np.asarray(probs, dtype=np.float64)
    n_cls = probs.shape[1]
    truth = np.eye(n_cls, dtype=bool)[np.asarray(labels, dtype=np.int64)] if task == "multiclass" \
        else np.asarray(labels) > 0.5
    if task == "multiclass" and n_cls == 2:
        return binary_auc(truth[:, 1], probs[:, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmean([binary_auc(truth[:, c], probs[:, c]) for c in range(n_cls)]))


def paired_auc_delta(probs_a: np.ndarray, probs_b: np.ndarray, labels: np.ndarray, task: str,
                     resamples: int = 1000, seed: int = 0) -> PairedDelta:
    labels = np.asarray(labels)
    n = len(labels)
    rng = np.random.default_rng(seed)
    deltas = []
    for _ in range(resamples):
        idx = rng.integers(0, n, n)
        deltas.append(summary_auc(probs_a[idx], labels[idx], task) - summary_auc(probs_b[idx], labels[idx], task))
    a, b = summary_auc(probs_a, labels, task), summary_auc(probs_b, labels, task)
    return _delta("auc", a, b, np.asarray(deltas), n)


def paired_mean_delta(scores_a: np.ndarray, scores_b: np.ndarray, metric: str = "dice", resamples: int = 1000,
                      seed: int = 0) -> PairedDelta:
    """Per-image scores (e.g. foreground Dice): the difference of means, images with a NaN in either dropped."""
    scores_a, scores_b = np.asarray(scores_a, np.float64), np.asarray(scores_b, np.float64)
    keep = np.isfinite(scores_a) & np.isfinite(scores_b)
    diff = scores_a[keep] - scores_b[keep]
    n = int(keep.sum())
    if n == 0:
        return PairedDelta(metric, float("nan"), float("nan"), float("nan"), (float("nan"), float("nan")), 0, 0)
    idx = np.random.default_rng(seed).integers(0, n, (resamples, n))
    return _delta(metric, float(scores_a[keep].mean()), float(scores_b[keep].mean()), diff[idx].mean(axis=1), n)


def _delta(metric: str, a: float, b: float, deltas: np.ndarray, n: int) -> PairedDelta:
    finite = deltas[np.isfinite(deltas)]
    lo, hi = (np.percentile(finite, [2.5, 97.5]) if finite.size else (np.nan, np.nan))
    return PairedDelta(metric, a, b, a - b, (float(lo), float(hi)), n, int(finite.size))
