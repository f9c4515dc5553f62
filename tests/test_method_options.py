"""Options added to match released code or beyond it (issue 16 §1): centring, class sum, same view."""
import pytest
import torch

from engine.methods.losses import consistency_mse, relation_consistency, relation_matrix
from tests.test_methods import make_batch, make_method


def test_centred_relation_matrix_is_not_flat_where_the_plain_one_is() -> None:
    torch.manual_seed(0)
    feats = 5.0 + 0.1 * torch.randn(48, 64)  # post-ReLU-like: a large shared component
    plain, centred = relation_matrix(feats), relation_matrix(feats, centre=True)
    off = ~torch.eye(48, dtype=torch.bool)
    assert (plain.diagonal().mean() - plain[off].mean()) < 0.01  # nearly flat
    assert (centred.diagonal().mean() - centred[off].mean()) > 0.5
    other = 5.0 + 0.1 * torch.randn(48, 64)
    assert relation_consistency(feats, other, centre=True) > 10 * relation_consistency(feats, other)


def test_consistency_sum_over_classes_is_class_count_times_the_mean() -> None:
    s, t = torch.randn(6, 7), torch.randn(6, 7)
    mean = consistency_mse(s, t, "multiclass")
    assert torch.allclose(consistency_mse(s, t, "multiclass", sum_classes=True), 7 * mean)


@pytest.mark.parametrize("same", [True, False])
def test_same_view_feeds_the_teacher_the_students_view(same: bool) -> None:
    method = make_method("mean_teacher", same_view=same)
    seen: dict[str, torch.Tensor] = {}
    real_teacher, real_student = method.teacher_forward, method.student_forward

    def teacher(view):
        seen["teacher"] = view
        return real_teacher(view)

    def student(view):
        seen["student"] = view
        return real_student(view)

    method.teacher_forward, method.student_forward = teacher, student
    method.train_step(make_batch("multiclass", 60))
    assert torch.equal(seen["teacher"], seen["student"]) is same


def test_src_mt_centring_option_reaches_the_relation_term(monkeypatch) -> None:
    from engine.methods import src_mt

    calls: list[bool] = []
    real = src_mt.relation_consistency
    monkeypatch.setattr(src_mt, "relation_consistency", lambda s, t, c=False: calls.append(c) or real(s, t, c))
    make_method("src_mt", relation_centring=True).train_step(make_batch("multiclass", 60))
    make_method("src_mt").train_step(make_batch("multiclass", 60))
    assert calls == [True, False]


def _outs(seed: int) -> tuple[dict, dict]:
    gen = torch.Generator().manual_seed(seed)
    student = {"logits": torch.randn(6, 3, generator=gen), "feat": torch.rand(6, 8, generator=gen)}
    teacher = {"logits": torch.randn(6, 3, generator=gen), "feat": torch.rand(6, 8, generator=gen)}
    return student, teacher


@pytest.mark.parametrize("beta", [0.5, 2.0])
@pytest.mark.parametrize("centre", [False, True])
def test_src_mt_terms_are_mt_consistency_plus_beta_times_relation(beta: float, centre: bool) -> None:
    method = make_method("src_mt", beta=beta, relation_centring=centre)
    s, t = _outs(21)
    terms = method.unsupervised_terms(s, t)
    assert set(terms) == {"cons", "relation"}
    assert terms["cons"].item() == pytest.approx(consistency_mse(s["logits"], t["logits"], "multiclass").item())
    expected = beta * relation_consistency(s["feat"], t["feat"], centre)
    assert terms["relation"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_mean_teacher_terms_follow_the_consistency_options() -> None:
    from engine.methods.losses import consistency_kl

    s, t = _outs(22)
    mse = make_method("mean_teacher").unsupervised_terms(s, t)
    assert set(mse) == {"cons"}
    assert mse["cons"].item() == pytest.approx(consistency_mse(s["logits"], t["logits"], "multiclass").item())
    kl = make_method("mean_teacher", consistency="kl").unsupervised_terms(s, t)
    assert kl["cons"].item() == pytest.approx(consistency_kl(s["logits"], t["logits"], "multiclass").item())
    summed = make_method("mean_teacher", consistency_sum_classes=True).unsupervised_terms(s, t)
    assert summed["cons"].item() == pytest.approx(3 * mse["cons"].item(), rel=1e-5)


def test_consistency_plan_exact_weights_for_each_ramp_option() -> None:
    import numpy as np

    from engine.methods import Plan
    from engine.methods.ramps import weight_schedule

    fresh = make_method("mean_teacher")
    assert fresh.needs_unlabeled(0)  # warm-up 0: consistency from the first step
    cases = [
        ({"warmup_fraction": 0.2, "rampup_fraction": 0.5, "rampup_min_steps": 0, "lambda_max": 2.0},
         (20, 40, "sigmoid", None, None)),  # ssl 20..100: ramp 0.5 * 80 = 40 steps
        ({"warmup_fraction": 0.2, "rampup_fraction": 0.1, "rampup_min_steps": 30, "lambda_max": 2.0},
         (20, 30, "sigmoid", None, None)),  # the minimum wins over 8 steps
        ({"warmup_fraction": 0.1, "rampup_epochs": 3, "ramp_kind": "linear", "ramp_per_epoch": True,
          "gate_epochs": 2, "lambda_max": 2.0}, (10, 30, "linear", 10, 30)),
    ]
    for params, (start, ramp, kind, spe, gate) in cases:
        method = make_method("mean_teacher", **params)
        method.set_plan(Plan(total_steps=100, steps_per_epoch=10))
        assert method.ssl_start == start
        assert not method.needs_unlabeled(start - 1) and method.needs_unlabeled(start)
        expected = 2.0 * weight_schedule(100, start, ramp, kind, spe, gate)
        assert np.allclose(method.weights, expected), params


def test_eval_mode_teacher_runs_without_dropout_and_train_mode_with_it() -> None:
    method = make_method("mean_teacher", teacher_mode="eval")
    view = torch.randn(4, 1, 16, 16)
    out = method.teacher_forward(view)["logits"]
    assert not method.teacher.training and not out.is_inference()
    method.teacher.eval()
    with torch.no_grad():
        assert torch.allclose(out, method.teacher(view)["logits"])
    train = make_method("mean_teacher", teacher_mode="train")
    train.teacher_forward(view)
    assert train.teacher.training
