"""Uncertainty scores: ranges, extremes, teacher disagreement, multilabel shapes, MC variance."""
import numpy as np
import pytest

from engine.analysis.uncertainty import scores
from engine.inference.mc_dropout import mc_variance

KEYS = {"entropy", "margin", "least_confidence"}


@pytest.mark.parametrize("c", [2, 3, 7])
def test_uniform_multiclass_is_maximally_uncertain(c: int) -> None:
    out = scores(np.full((4, c), 1.0 / c), "multiclass")
    assert set(out) == KEYS  # no teacher -> no disagreement key
    np.testing.assert_allclose(out["entropy"], 1.0, atol=1e-6)
    np.testing.assert_allclose(out["margin"], 1.0, atol=1e-6)
    np.testing.assert_allclose(out["least_confidence"], (c - 1) / c, atol=1e-6)


def test_one_hot_multiclass_is_certain() -> None:
    out = scores(np.eye(4)[[0, 3, 1]], "multiclass")
    for key in KEYS:
        np.testing.assert_allclose(out[key], 0.0, atol=1e-6)
        assert out[key].dtype == np.float32 and out[key].shape == (3,)


def test_more_uncertain_rows_score_higher() -> None:
    probs = np.array([[0.9, 0.05, 0.05], [0.5, 0.4, 0.1], [0.34, 0.33, 0.33]])
    out = scores(probs, "multiclass")
    for key in KEYS:
        assert out[key][0] < out[key][1] < out[key][2], key


def test_disagreement_zero_when_teacher_agrees_and_in_unit_range() -> None:
    rng = np.random.default_rng(0)
    student = rng.dirichlet(np.ones(5), size=8)
    same = scores(student, "multiclass", teacher_probs=student.copy())
    np.testing.assert_allclose(same["disagreement"], 0.0, atol=1e-7)
    other = scores(student, "multiclass", teacher_probs=rng.dirichlet(np.ones(5), size=8))["disagreement"]
    assert (other > 0).all() and (other <= 1).all() and np.isfinite(other).all()
    opposite = scores(np.eye(5)[[0]], "multiclass", teacher_probs=np.eye(5)[[3]])["disagreement"]
    np.testing.assert_allclose(opposite, 1.0, atol=1e-6)  # disjoint one-hots: total variation 1


def test_multilabel_shapes_and_extremes() -> None:
    probs = np.array([[0.5, 0.5, 0.5], [0.0, 1.0, 1.0], [0.9, 0.1, 0.5]])
    out = scores(probs, "multilabel", teacher_probs=1.0 - probs)
    assert set(out) == KEYS | {"disagreement"}
    for key, arr in out.items():
        assert arr.shape == (3,) and arr.dtype == np.float32 and np.isfinite(arr).all(), key
    np.testing.assert_allclose([out["entropy"][0], out["margin"][0], out["least_confidence"][0]], [1, 1, 0.5])
    np.testing.assert_allclose([out["entropy"][1], out["margin"][1], out["least_confidence"][1]], 0, atol=1e-6)
    np.testing.assert_allclose(out["disagreement"][1], 1.0, atol=1e-6)


def test_bad_inputs_fail_clearly() -> None:
    with pytest.raises(ValueError, match="task"):
        scores(np.ones((2, 2)) / 2, "segmentation")
    with pytest.raises(ValueError, match="teacher"):
        scores(np.ones((2, 2)) / 2, "multiclass", teacher_probs=np.ones((3, 2)) / 2)


def test_nan_probs_do_not_leak_nan() -> None:
    out = scores(np.array([[np.nan, 0.5], [0.5, 0.5]]), "multiclass", teacher_probs=np.full((2, 2), 0.5))
    assert all(np.isfinite(v).all() for v in out.values())


def test_mc_variance() -> None:
    same = np.repeat(np.array([[[0.2, 0.8], [0.6, 0.4]]]), 5, axis=0)  # (T=5, N=2, C=2)
    np.testing.assert_allclose(mc_variance(same), 0.0, atol=1e-7)
    flip = np.stack([np.eye(2)[[0]], np.eye(2)[[1]]])  # (2, 1, 2): var 0.25 per class
    np.testing.assert_allclose(mc_variance(flip), [0.25])
    assert mc_variance(np.random.default_rng(0).random((4, 6, 3))).shape == (6,)
