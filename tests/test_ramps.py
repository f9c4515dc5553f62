"""Exact values of the ramp and learning-rate schedules: every method's loss weights and LR come from here,
so an off-by-one or a wrong exponent shifts every run silently. Reference values are computed by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine.methods import ramps


@pytest.mark.parametrize(("t", "length", "expected"), [
    (0, 10, math.exp(-5.0)),
    (5, 10, math.exp(-5.0 * 0.25)),
    (2.5, 10, math.exp(-5.0 * 0.75 ** 2)),
    (10, 10, 1.0),
    (12, 10, 1.0),
    (-3, 10, math.exp(-5.0)),  # clamped below at 0
    (4, 0, 1.0),
    (4, -1, 1.0),
])
def test_sigmoid_rampup_values(t: float, length: float, expected: float) -> None:
    assert ramps.sigmoid_rampup(t, length) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("t", "length", "expected"), [
    (0, 10, 0.0), (3, 10, 0.3), (10, 10, 1.0), (25, 10, 1.0), (-2, 10, 0.0), (7, 0, 1.0), (7, -5, 1.0),
])
def test_linear_rampup_values(t: float, length: float, expected: float) -> None:
    assert ramps.linear_rampup(t, length) == pytest.approx(expected, abs=1e-12)
    assert isinstance(ramps.linear_rampup(t, length), float)


def test_weight_schedule_per_step_sigmoid_matches_the_ramp_after_start() -> None:
    w = ramps.weight_schedule(12, start=2, ramp_steps=4)
    assert w.dtype == np.float64 and w.shape == (12,)
    expected = [0.0, 0.0] + [ramps.sigmoid_rampup(t, 4) for t in range(10)]
    assert w.tolist() == pytest.approx(expected, rel=1e-12)


def test_weight_schedule_linear_kind_and_gate() -> None:
    w = ramps.weight_schedule(10, start=0, ramp_steps=5, kind="linear", gate_step=3)
    assert w.tolist() == pytest.approx([0.0, 0.0, 0.0, 0.6, 0.8, 1.0, 1.0, 1.0, 1.0, 1.0])
    ungated = ramps.weight_schedule(10, start=0, ramp_steps=5, kind="linear", gate_step=-4)
    assert ungated.tolist() == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 1.0, 1.0, 1.0])


def test_weight_schedule_whole_epochs() -> None:
    w = ramps.weight_schedule(9, start=1, ramp_steps=6, kind="linear", steps_per_epoch=2)
    # t = step - 1; epoch = t // 2; ramp over 6 / 2 = 3 epochs
    assert w.tolist() == pytest.approx([0.0, 0.0, 0.0, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 1.0, 1.0])


def test_lr_cosine_values_without_warmup() -> None:
    f = ramps.lr_factors(4, "cosine")
    assert f.tolist() == pytest.approx([0.5 * (1 + math.cos(math.pi * t / 4)) for t in range(4)])


def test_lr_warmup_multiplies_the_schedule() -> None:
    f = ramps.lr_factors(6, "constant", warmup_steps=3)
    assert f.tolist() == pytest.approx([1 / 3, 2 / 3, 1.0, 1.0, 1.0, 1.0])
    g = ramps.lr_factors(4, "cosine", warmup_steps=2)
    assert g.tolist() == pytest.approx([0.5 * 0.5 * (1 + math.cos(math.pi * t / 4)) if t == 0
                                        else 0.5 * (1 + math.cos(math.pi * t / 4)) for t in range(4)])


def test_lr_exp_epoch_and_poly() -> None:
    e = ramps.lr_factors(5, "exp_epoch", steps_per_epoch=2, gamma=0.5)
    assert e.tolist() == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.25])
    p = ramps.lr_factors(4, "poly", gamma=2.0)
    assert p.tolist() == pytest.approx([1.0, 0.5625, 0.25, 0.0625])
    d = ramps.lr_factors(3, "poly")  # default power 0.9
    assert d.tolist() == pytest.approx([1.0, (2 / 3) ** 0.9, (1 / 3) ** 0.9])


def test_lr_restarts_begin_a_fresh_schedule_and_out_of_range_restarts_are_ignored() -> None:
    f = ramps.lr_factors(6, "cosine", warmup_steps=2, restarts=(4, 0, 6, 9))
    first = [0.5 * (1 + math.cos(math.pi * t / 4)) * min(1.0, (t + 1) / 2) for t in range(4)]
    second = [0.5 * (1 + math.cos(math.pi * t / 2)) * min(1.0, (t + 1) / 2) for t in range(2)]
    assert f.tolist() == pytest.approx(first + second)
    assert f.dtype == np.float64


def test_lr_unknown_schedule_is_constant() -> None:
    assert ramps.lr_factors(3, "none").tolist() == [1.0, 1.0, 1.0]


def test_linear_ramp_of_length_one_and_default_epoch_length_and_an_early_restart() -> None:
    assert ramps.linear_rampup(0, 1) == 0.0 and ramps.linear_rampup(1, 1) == 1.0
    assert ramps.lr_factors(3, "exp_epoch", gamma=0.5).tolist() == pytest.approx([1.0, 0.5, 0.25])
    f = ramps.lr_factors(4, "poly", gamma=1.0, restarts=(1,))
    assert f.tolist() == pytest.approx([1.0, 1.0, 2 / 3, 1 / 3])
