"""Classification metrics: definitions, positive class, thresholds, ranges."""
import numpy as np
import pytest

from engine.scoring.metrics import classification_metrics, expected_calibration_error, srcmt_metrics


def test_binary_scores_are_for_the_positive_second_class() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    p1 = np.array([0.1, 0.2, 0.7, 0.8, 0.9, 0.6, 0.4, 0.3])
    out = classification_metrics(np.stack([1 - p1, p1], 1), labels, "multiclass", ["normal", "pneumonia"])
    assert out["sensitivity"] == pytest.approx(3 / 5)  # TP = 3 of 5 positives
    assert out["specificity"] == pytest.approx(2 / 3)
    assert out["f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 2))
    assert out["accuracy"] == pytest.approx(5 / 8)
    assert out["balanced_accuracy"] == pytest.approx((3 / 5 + 2 / 3) / 2)
    assert out["auc"] == pytest.approx(out["per_class"]["pneumonia"]["auc"])


def test_multiclass_macro_one_vs_rest_and_perfect_scores() -> None:
    labels = np.array([0, 1, 2, 2, 1, 0])
    probs = np.eye(3)[labels] * 0.9 + 0.1 / 3
    out = classification_metrics(probs, labels, "multiclass")
    for key in ("auc", "sensitivity", "specificity", "f1", "accuracy", "balanced_accuracy"):
        assert out[key] == pytest.approx(1.0)
    assert set(out["per_class"]) == {"class_0", "class_1", "class_2"}


def test_multilabel_macro_over_labels_threshold_half_and_auc_subset() -> None:
    labels = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=np.float32)
    probs = np.array([[0.9, 0.2, 0.1], [0.3, 0.6, 0.2], [0.4, 0.7, 0.3], [0.2, 0.1, 0.8]])
    out = classification_metrics(probs, labels, "multilabel", ["x", "y", "nofinding"], auc_classes=["x", "y"])
    assert out["per_class"]["x"]["sensitivity"] == pytest.approx(0.5)  # 0.4 < 0.5 misses one
    assert out["sensitivity"] == pytest.approx(np.mean([0.5, 1.0, 1.0]))
    assert out["auc"] == pytest.approx(np.mean([out["per_class"]["x"]["auc"], out["per_class"]["y"]["auc"]]))


def test_srcmt_threshold_variant_uses_018_per_class() -> None:
    labels = np.array([0, 1, 2])
    probs = np.array([[0.5, 0.3, 0.2], [0.2, 0.5, 0.3], [0.6, 0.2, 0.2]])
    out = srcmt_metrics(probs, labels)
    # class 0 column: p >= 0.18 everywhere -> sens 1, spec 0
    assert out["per_class"]["class_0"]["specificity"] == 0.0
    assert out["argmax_accuracy"] == pytest.approx(2 / 3)


def test_all_fractions_in_unit_interval_and_undefined_auc_is_nan() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 200)
    out = classification_metrics(rng.dirichlet(np.ones(4), 200), labels, "multiclass")
    for key in ("auc", "sensitivity", "specificity", "f1", "accuracy", "balanced_accuracy", "ece"):
        assert 0.0 <= out[key] <= 1.0
    one_class = classification_metrics(np.full((3, 2), 0.5), np.zeros(3, int), "multiclass")
    assert np.isnan(one_class["auc"])


def test_ece_zero_when_confidence_matches_accuracy() -> None:
    probs = np.tile([[0.75, 0.25]], (8, 1))
    labels = np.array([0, 0, 0, 1, 0, 0, 0, 1])  # 75 % correct at 75 % confidence
    assert expected_calibration_error(probs, labels, "multiclass") == pytest.approx(0.0, abs=1e-9)
    assert expected_calibration_error(np.tile([[1.0, 0.0]], (4, 1)), np.ones(4, int), "multiclass") == 1.0
