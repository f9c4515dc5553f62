"""Evaluation metrics (scikit-learn based). Every fraction is in [0, 1]; undefined values are NaN.

Classification now; segmentation metrics (Dice, HD95, ASD) go in the same module later.
Thresholds (CONTRACTS §6): argmax for multiclass, 0.5 for multilabel, 0.18 only for the SRC-MT paper config.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score


def _safe_auc(truth: np.ndarray, score: np.ndarray) -> float:
    if truth.min() == truth.max():
        return float("nan")  # one class only: AUC undefined, left out of the macro mean
    return float(roc_auc_score(truth, score))


def _binary_counts(truth: np.ndarray, pred: np.ndarray) -> tuple[int, int, int, int]:
    truth, pred = truth.astype(bool), pred.astype(bool)
    return (int((truth & pred).sum()), int((~truth & ~pred).sum()),
            int((~truth & pred).sum()), int((truth & ~pred).sum()))


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else float("nan")


def binary_scores(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Sensitivity, specificity, precision, F1, accuracy for one binary column."""
    tp, tn, fp, fn = _binary_counts(truth, pred)
    sens, prec = _ratio(tp, tp + fn), _ratio(tp, tp + fp)
    return {"sensitivity": sens, "specificity": _ratio(tn, tn + fp), "precision": prec,
            "f1": _ratio(2 * tp, 2 * tp + fp + fn), "accuracy": _ratio(tp + tn, tp + tn + fp + fn)}


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, task: str, bins: int = 15) -> float:
    """ECE with equal-width bins: top-label confidence (multiclass), every label probability (multilabel)."""
    if task == "multiclass":
        conf, correct = probs.max(axis=1), (probs.argmax(axis=1) == labels).astype(np.float64)
    else:
        conf, correct = probs.ravel(), labels.ravel().astype(np.float64)
    if conf.size == 0:
        return float("nan")
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return float(ece)


def classification_metrics(probs: np.ndarray, labels: np.ndarray, task: str,
                           class_names: Sequence[str] | None = None, threshold: float | None = None,
                           auc_classes: Sequence[str] | None = None) -> dict[str, Any]:
    """Macro and per-class AUC, sensitivity, specificity, accuracy, F1, balanced accuracy, ECE.

    probs (N, C); labels: int (N,) for multiclass, multi-hot (N, C) for multilabel. Two classes: the
    binary scores are for the positive class (index 1); more: macro over one-vs-rest / over labels.
    `threshold` (SRC-MT paper config) binarises each class column at p >= threshold instead of argmax.
    `auc_classes` restricts the macro AUC (ChestX-ray14: the 14 diseases, not "No Finding").
    """
    probs = np.asarray(probs, dtype=np.float64)
    n_cls = probs.shape[1]
    names = list(class_names) if class_names is not None else [f"class_{i}" for i in range(n_cls)]
    if task == "multiclass":
        labels = np.asarray(labels, dtype=np.int64)
        truth = np.eye(n_cls, dtype=bool)[labels]
        pred = probs >= threshold if threshold is not None else np.eye(n_cls, dtype=bool)[probs.argmax(1)]
    else:
        truth = np.asarray(labels) > 0.5
        pred = probs >= (0.5 if threshold is None else threshold)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        per_auc = [_safe_auc(truth[:, c], probs[:, c]) for c in range(n_cls)]
        per_bin = [binary_scores(truth[:, c], pred[:, c]) for c in range(n_cls)]
        auc_idx = [names.index(n) for n in auc_classes] if auc_classes else list(range(n_cls))
        if task == "multiclass" and n_cls == 2 and threshold is None:
            summary, auc = per_bin[1], per_auc[1]  # positive class = the second class name (CONTRACTS §5)
        else:
            summary = {k: float(np.nanmean([s[k] for s in per_bin])) for k in per_bin[0]}
            auc = float(np.nanmean([per_auc[i] for i in auc_idx]))
    out: dict[str, Any] = {"auc": auc, **summary, "ece": expected_calibration_error(probs, labels, task)}
    if task == "multiclass":
        arg = probs.argmax(1)
        out["accuracy"] = float((arg == labels).mean()) if threshold is None else summary["accuracy"]
        out["argmax_accuracy"] = float((arg == labels).mean())
        recalls = [np.mean(arg[labels == c] == c) for c in range(n_cls) if (labels == c).any()]
        out["balanced_accuracy"] = float(np.mean(recalls))
    else:
        out["balanced_accuracy"] = float(np.nanmean([(s["sensitivity"] + s["specificity"]) / 2 for s in per_bin]))
    out["per_class"] = {names[c]: {"auc": per_auc[c], **per_bin[c]} for c in range(n_cls)}
    return out


def srcmt_metrics(probs: np.ndarray, labels: np.ndarray, class_names: Sequence[str] | None = None,
                  threshold: float = 0.18) -> dict[str, Any]:
    """SRC-MT's published definitions (METHODS §0.4): per-class p >= 0.18, binary metrics, class mean."""
    return classification_metrics(probs, labels, "multiclass", class_names, threshold=threshold)


# --- segmentation (METHODS §0.4) ------------------------------------------------------------------------------


def _surface(mask: np.ndarray) -> np.ndarray:
    """Boundary pixels: the mask minus its 4-connected erosion (a one-pixel object is all surface)."""
    from scipy import ndimage

    return mask & ~ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(mask.ndim, 1))


def surface_distances(pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float] | None = None) -> np.ndarray:
    """Both directed sets of boundary-to-boundary distances, concatenated (pixels unless spacing is given)."""
    from scipy import ndimage

    pred_s, truth_s = _surface(pred), _surface(truth)
    to_truth = ndimage.distance_transform_edt(~truth_s, sampling=spacing)
    to_pred = ndimage.distance_transform_edt(~pred_s, sampling=spacing)
    return np.concatenate([to_truth[pred_s], to_pred[truth_s]])


def binary_seg_scores(pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float] | None = None
                      ) -> dict[str, float]:
    """Dice, Jaccard, HD95 (95th percentile of the symmetric surface distances), ASD (their mean).

    Empty-mask rule: both empty -> Dice = Jaccard = 1; exactly one empty -> 0; HD95/ASD NaN whenever
    either mask has no surface (left out of every mean).
    """
    pred, truth = np.asarray(pred, dtype=bool), np.asarray(truth, dtype=bool)
    n_pred, n_truth = int(pred.sum()), int(truth.sum())
    if n_pred == 0 or n_truth == 0:
        both = float(n_pred == n_truth)
        return {"dice": both, "jaccard": both, "hd95": float("nan"), "asd": float("nan")}
    inter = int((pred & truth).sum())
    dist = surface_distances(pred, truth, spacing)
    return {"dice": 2.0 * inter / (n_pred + n_truth), "jaccard": inter / (n_pred + n_truth - inter),
            "hd95": float(np.percentile(dist, 95)), "asd": float(dist.mean())}


SEG_KEYS = ("dice", "jaccard", "hd95", "asd")


def segmentation_metrics(pred: np.ndarray, truth: np.ndarray, class_names: Sequence[str] | None = None,
                         spacing: Sequence[float] | None = None) -> dict[str, Any]:
    """Per image and per foreground class (index >= 1), then the mean over images, then over classes.

    pred, truth: int class-index masks (N, H, W); truth -1 = unannotated pixels, ignored. Returns the means
    plus 'per_class' and 'per_image' (mean over classes per image, for case-level views).
    """
    pred, truth = np.asarray(pred), np.asarray(truth)
    n_cls = max(len(class_names) if class_names is not None else 0, int(max(pred.max(initial=0),
                                                                            truth.max(initial=0))) + 1, 2)
    names = list(class_names) if class_names is not None else [f"class_{i}" for i in range(n_cls)]
    scores = np.full((len(pred), n_cls - 1, len(SEG_KEYS)), np.nan)  # (N, K-1, 4)
    for i, (p, t) in enumerate(zip(pred, truth)):
        valid = t >= 0
        for c in range(1, n_cls):
            case = binary_seg_scores((p == c) & valid, t == c, spacing)
            scores[i, c - 1] = [case[k] for k in SEG_KEYS]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (no surfaces anywhere) stay NaN
        per_class = np.nanmean(scores, axis=0)  # (K-1, 4)
        per_image = np.nanmean(scores, axis=1)  # (N, 4)
        overall = np.nanmean(per_class, axis=0) if len(pred) else np.full(len(SEG_KEYS), np.nan)
    out: dict[str, Any] = {k: float(overall[j]) for j, k in enumerate(SEG_KEYS)}
    out["per_class"] = {names[c]: {k: float(per_class[c - 1, j]) for j, k in enumerate(SEG_KEYS)}
                        for c in range(1, n_cls)}
    out["per_image"] = {k: per_image[:, j].tolist() for j, k in enumerate(SEG_KEYS)}
    return out
