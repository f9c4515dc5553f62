"""Evaluation report of one checkpoint on one labeled split, ready to plot: metrics, per-class ROC points,
confusion matrix, reliability bins. Computed by the worker so the app only draws (it never imports engine)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, roc_curve

from engine.scoring.metrics import classification_metrics

ROC_POINTS = 200
RELIABILITY_BINS = 10


def _thin(x: np.ndarray, y: np.ndarray, keep: int = ROC_POINTS) -> tuple[list[float], list[float]]:
    if len(x) > keep:
        index = np.unique(np.linspace(0, len(x) - 1, keep).round().astype(int))
        x, y = x[index], y[index]
    return [round(float(v), 4) for v in x], [round(float(v), 4) for v in y]


def reliability(probs: np.ndarray, labels: np.ndarray, task: str, bins: int = RELIABILITY_BINS) -> dict[str, list]:
    """Mean confidence vs observed accuracy per equal-width bin (top label; every label for multilabel)."""
    if task == "multiclass":
        confidence, correct = probs.max(1), (probs.argmax(1) == labels).astype(float)
    else:
        confidence, correct = probs.ravel(), labels.ravel().astype(float)
    which = np.clip((confidence * bins).astype(int), 0, bins - 1)
    rows = [(float(confidence[which == b].mean()), float(correct[which == b].mean()), int((which == b).sum()))
            for b in range(bins) if (which == b).any()]
    return {"confidence": [r[0] for r in rows], "accuracy": [r[1] for r in rows], "count": [r[2] for r in rows]}


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def evaluation_report(probs: np.ndarray, labels: np.ndarray, task: str, class_names: Sequence[str]) -> dict:
    """probs (N, C); labels int (N,) multiclass or multi-hot (N, C). JSON-ready (NaN -> None)."""
    probs = np.asarray(probs, dtype=np.float64)
    n_classes = probs.shape[1]
    truth = np.eye(n_classes, dtype=int)[labels] if task == "multiclass" else np.asarray(labels, dtype=int)
    roc = {}
    for c, name in enumerate(class_names):
        if truth[:, c].min() != truth[:, c].max():
            fpr, tpr, _ = roc_curve(truth[:, c], probs[:, c])
            roc[name] = dict(zip(("fpr", "tpr"), _thin(fpr, tpr)))
    report = {"n": len(probs), "metrics": _nan_to_none(classification_metrics(probs, labels, task, class_names)),
              "roc": roc, "reliability": reliability(probs, labels, task)}
    if task == "multiclass":
        report["confusion"] = confusion_matrix(labels, probs.argmax(1), labels=list(range(n_classes))).tolist()
    return report
