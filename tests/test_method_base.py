"""The shared SSLMethod contract: class weights, params coercion, phase hooks, the DDP wrapper route and the
supervised step every method warm-starts with. Wrong here means every method is wrong the same way."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.core.config import AugConfig
from engine.loaders.transforms import ViewMaker
from engine.methods import METHODS, Plan
from engine.methods.base import BaseParams, SSLMethod, class_weights, coerce_params
from engine.models import create_model
from tests.test_methods import make_batch, make_method, no_dropout

torch.set_num_threads(1)


def test_class_weights_kinds() -> None:
    assert class_weights("none", np.array([1, 2])) is None
    assert class_weights("balanced", None) is None
    balanced = class_weights("balanced", np.array([10, 30, 0]))  # zero counts count as one
    inverse = np.array([1 / 10, 1 / 30, 1.0])
    assert balanced.dtype == torch.float32
    assert torch.allclose(balanced, torch.tensor(inverse / inverse.mean(), dtype=torch.float32))
    assert balanced.mean().item() == pytest.approx(1.0)
    srcmt = class_weights("srcmt", np.array([100, 400, 0]))
    assert srcmt.dtype == torch.float32 and srcmt.tolist() == pytest.approx([100.0, 25.0, 10000.0])


@dataclass(frozen=True)
class _Params:
    alpha: float = 0.5
    name: str = "x"


@dataclass(frozen=True)
class _Other:
    alpha: float = 0.25
    name: str = "y"


def test_coerce_params_from_none_instance_dataclass_and_mapping() -> None:
    assert coerce_params(_Params, None) == _Params()
    given = _Params(alpha=0.1)
    assert coerce_params(_Params, given) is given
    assert coerce_params(_Params, _Other()) == _Params(alpha=0.25, name="y")
    assert coerce_params(_Params, {"alpha": 0.75}) == _Params(alpha=0.75)
    with pytest.raises(Exception, match="bogus"):
        coerce_params(_Params, {"bogus": 1})


def _base(class_counts: np.ndarray | None = None, params: object = None) -> SSLMethod:
    torch.manual_seed(0)
    student = create_model("compact_cnn", num_classes=3, in_chans=1)
    return SSLMethod(student, "multiclass", 3, ViewMaker(AugConfig(), 0.5, 0.25), params, class_counts)


def test_base_defaults_and_plan() -> None:
    method = _base()
    assert method.params == BaseParams() and method.teacher is None and method.plan is None
    assert method.planned_steps() is None
    assert method.class_weight is None
    method.set_plan(Plan(total_steps=40, steps_per_epoch=4))
    assert method.planned_steps() == 40 and method.plan == Plan(40, 4)
    assert method.phase_fractions() == [("train", 0.0)]
    assert method.needs_unlabeled(0) is False and method.pool_batch(5) is False
    assert method.lr_restarts() == ()
    assert SSLMethod.uses_teacher is False and SSLMethod.tasks == ("multiclass", "multilabel")
    with pytest.raises(NotImplementedError):
        method.train_step(make_batch("multiclass", 0))


def test_class_weight_buffer_is_not_saved_in_checkpoints() -> None:
    method = _base(np.array([1, 2, 3]), {"class_weights": "balanced"})
    assert method.class_weight is not None and method.class_weight.shape == (3,)
    assert "class_weight" not in method.state_dict()
    assert method.extra_state() == {}


def test_eval_models_and_extra_state_skip_student_and_teacher() -> None:
    method = _base()
    assert list(method.eval_models()) == ["student"]
    method.teacher = create_model("compact_cnn", num_classes=3, in_chans=1)
    assert list(method.eval_models()) == ["student", "teacher"]
    assert method.eval_models()["teacher"] is method.teacher
    method.register_buffer("queue", torch.ones(2))
    extra = method.extra_state()
    assert list(extra) == ["queue"] and torch.equal(extra["queue"], torch.ones(2))


def test_student_forward_goes_through_the_wrapper_which_is_not_a_submodule() -> None:
    method = _base()
    method.student.eval()  # no dropout draws: the two passes must agree
    calls: list[int] = []

    class Wrapper(torch.nn.Module):
        def forward(self, x: torch.Tensor, **kwargs: object) -> dict[str, torch.Tensor]:
            calls.append(x.shape[0])
            return method.student(x, **kwargs)

    x = torch.randn(2, 1, 16, 16)
    plain = method.student_forward(x)["logits"]
    method.use_student_wrapper(Wrapper())
    wrapped = method.student_forward(x)["logits"]
    assert calls == [2] and torch.allclose(plain, wrapped)
    assert not any(name.startswith("_student_wrapper") for name, _ in method.named_modules())
    method.use_student_wrapper(None)
    method.student_forward(x)
    assert calls == [2]


def test_supervised_step_is_weighted_cross_entropy_on_the_weak_view() -> None:
    method = _base(np.array([1, 1, 8]), {"class_weights": "balanced"})
    method.student.eval()
    batch = make_batch("multiclass", 3)
    gen_state = batch.gen.get_state()
    seen: list[int] = []
    real = method.views.weak
    method.views.weak = lambda images, gen: seen.append(images.shape[0]) or real(images, gen)
    torch.manual_seed(7)  # dropout draws
    out = method.supervised_step(batch)
    assert seen == [batch.labeled.shape[0]] and method.student.training
    assert set(out.logs) == {"loss_sup"} and out.logs["loss_sup"] == pytest.approx(out.loss.item())
    view = real(batch.labeled, torch.Generator().set_state(gen_state))
    torch.manual_seed(7)
    logits = method.student(view)["logits"]
    expected = F.cross_entropy(logits, batch.targets, weight=method.class_weight)
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-4)
    unweighted = F.cross_entropy(logits, batch.targets)
    assert out.loss.item() != pytest.approx(unweighted.item(), rel=1e-4)


def test_every_registered_method_is_an_ssl_method_with_its_own_params() -> None:
    for name in METHODS.names():
        cls = METHODS[name]
        assert issubclass(cls, SSLMethod)
        assert isinstance(cls.tasks, tuple) and cls.tasks


def test_plain_step_is_weighted_loss_on_flips_drawn_from_the_batch_generator() -> None:
    method = make_method("plain", class_counts=np.array([1, 1, 8]), class_weights="balanced")
    batch = make_batch("multiclass", 4)
    gen_state = batch.gen.get_state()
    seen: list[object] = []
    real = method.views.flipped
    method.views.flipped = lambda images, gen: seen.append(gen) or real(images, gen)
    method.student.eval()
    torch.manual_seed(3)
    out = method.train_step(batch)
    assert seen == [batch.gen] and method.student.training
    assert set(out.logs) == {"loss_sup"} and out.logs["loss_sup"] == pytest.approx(out.loss.item())
    torch.manual_seed(3)
    logits = method.student(real(batch.labeled, torch.Generator().set_state(gen_state)))["logits"]
    weighted = F.cross_entropy(logits, batch.targets, weight=method.class_weight)
    assert out.loss.item() == pytest.approx(weighted.item(), rel=1e-4)
    assert out.loss.item() != pytest.approx(F.cross_entropy(logits, batch.targets).item(), rel=1e-4)


@pytest.mark.parametrize("name", ["supervised", "seg_supervised"])
def test_supervised_free_ema_copy_averages_buffers_at_the_plan_rate(monkeypatch, name: str) -> None:
    from engine.methods import ema as ema_module
    from engine.methods import supervised as module
    from tests.test_seg_methods import seg_method_with

    seg = name == "seg_supervised"
    build = seg_method_with if seg else make_method
    method = build(name)
    method.set_plan(Plan(total_steps=1000, steps_per_epoch=10))
    assert method.teacher is not None and not any(p.requires_grad for p in method.teacher.parameters())
    calls: list[tuple] = []
    monkeypatch.setattr(module, "ema_update", lambda t, s, rate, buffers: calls.append((t, s, rate, buffers)))
    method.after_step(250)
    alpha = 0.99 if seg else 0.98
    assert calls == [(method.teacher, method.student, ema_module.ema_rate(250, alpha, "plan", 1000), True)]
    assert calls[0][2] == pytest.approx(alpha)
    without = build(name, ema_teacher=False)
    assert without.teacher is None and list(without.eval_models()) == ["student"]
    without.after_step(5)  # nothing to average
    assert len(calls) == 1


def test_supervised_step_is_the_whole_train_step() -> None:
    method = make_method("supervised")
    no_dropout(method)
    batch = make_batch("multiclass", 70)
    out = method.train_step(batch)
    again = method.supervised_step(make_batch("multiclass", 70))
    assert set(out.logs) == {"loss_sup"} and out.loss.item() == pytest.approx(again.loss.item())
