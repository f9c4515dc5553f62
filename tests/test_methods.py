"""Every registered method: one finite step, gradient only to the student, EMA at the configured rate."""
import numpy as np
import pytest
import torch

from engine.core.config import AugConfig
from engine.loaders.transforms import ViewMaker
from engine.methods import METHODS, Batch, Plan, ema
from engine.models import create_model
from tests.method_spies import capture_student_pass

torch.set_num_threads(1)  # tiny tensors; the shared 2-core box punishes oversubscription
CLASSIFIERS = [name for name in METHODS.names() if "multiclass" in METHODS[name].tasks]  # seg: test_seg.py
LABELED_ONLY = ("supervised", "plain")  # no unlabeled term; plain has no EMA copy either
SSL = [name for name in CLASSIFIERS if name not in LABELED_ONLY]


def make_method(name: str, task: str = "multiclass", class_counts: np.ndarray | None = None, **params):
    """A seeded compact-CNN method planned for 100 steps; class_counts feed `class_weights` when set."""
    torch.manual_seed(0)
    student = create_model("compact_cnn", num_classes=3, in_chans=1)
    params = {"warmup_fraction": 0.0, **params} if name not in LABELED_ONLY else params
    if name == "s2mts2":
        params.setdefault("queue_size", 8)
    if name == "fixmatch":  # an untrained teacher is never 95 % sure: keep every pseudo-label in these tests
        params.setdefault("threshold", 0.0)
    method = METHODS[name](student, task, 3, ViewMaker(AugConfig(), 0.5, 0.25), params, class_counts)
    method.set_plan(Plan(total_steps=100, steps_per_epoch=10))
    return method


def make_batch(task: str, step: int, n_lab: int = 4, n_unl: int = 6) -> Batch:
    gen = torch.Generator().manual_seed(step)
    images = torch.randint(0, 256, (n_lab + n_unl, 1, 16, 16), dtype=torch.uint8, generator=gen)
    targets = torch.tensor([0, 1, 2, 1]) if task == "multiclass" else torch.tensor(
        [[1.0, 0, 1], [0, 1, 0], [0, 0, 0], [1, 1, 1]])
    return Batch(images[:n_lab], targets, images[n_lab:], step, gen)


def ssl_step(method) -> int:
    """A step inside the consistency phase (after any warm start or pre-training)."""
    return max(getattr(method, "ssl_start", 0), 0) + 50


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
@pytest.mark.parametrize("name", CLASSIFIERS)
def test_one_step_finite_loss_in_every_phase(name: str, task: str) -> None:
    method = make_method(name, task)
    optimizer = torch.optim.Adam([p for p in method.parameters() if p.requires_grad], lr=1e-3)
    for step in (0, ssl_step(method)):
        out = method.train_step(make_batch(task, step))
        assert torch.isfinite(out.loss) and out.loss.ndim == 0
        assert all(np.isfinite(v) for v in out.logs.values())
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        method.after_step(step)


@pytest.mark.parametrize("name", SSL)
def test_unlabeled_loss_grads_student_not_teacher(name: str) -> None:
    method = make_method(name)
    batch = make_batch("multiclass", ssl_step(method))
    batch.targets = batch.targets[:0]
    batch.labeled = batch.labeled[:0]  # unlabeled images only: the loss is the consistency part alone
    out = method.train_step(batch)
    assert out.loss.item() > 0
    out.loss.backward()
    student_grads = [p.grad for p in method.student.parameters() if p.grad is not None]
    assert student_grads and sum(g.abs().sum().item() for g in student_grads) > 0
    assert all(p.grad is None and not p.requires_grad for p in method.teacher.parameters())


def test_s2mts2_stage1_grads_student_not_key_encoder() -> None:
    method = make_method("s2mts2", pretrain_fraction=0.5)
    out = method.train_step(make_batch("multiclass", 0))
    out.loss.backward()
    assert "loss_jcl" in out.logs
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in method.student.parameters())
    assert all(p.grad is None for p in method.teacher.parameters())
    assert all(p.grad is None for p in method.key_head.parameters())


def test_s2mts2_stage2_starts_with_teacher_equal_to_student() -> None:
    method = make_method("s2mts2", pretrain_fraction=0.5)
    with torch.no_grad():  # stage 1 left the key encoder behind the student (as momentum does)
        for p in method.student.parameters():
            p.add_(0.5)
    method.train_step(make_batch("multiclass", method.pretrain_steps))  # no optimizer step: params unchanged
    for t, s in zip(method.teacher.parameters(), method.student.parameters()):
        assert torch.equal(t, s)


@pytest.mark.parametrize("name", [n for n in CLASSIFIERS if n not in ("s2mts2", "plain")])
def test_ema_moves_teacher_toward_student_at_configured_rate(name: str) -> None:
    method = make_method(name)
    if method.teacher is None:
        pytest.skip("no teacher configured")
    with torch.no_grad():
        for p in method.teacher.parameters():
            p.fill_(0.0)
        for p in method.student.parameters():
            p.fill_(1.0)
    step, alpha = 1000, method.params.ema_alpha
    method.after_step(step)
    rate = ema.ema_rate(step, alpha, method.params.ema_warmup, method.planned_steps())
    for p in method.teacher.parameters():
        assert torch.allclose(p, torch.full_like(p, 1.0 - rate))


def test_plan_ema_rule_reaches_alpha_early_and_caps_the_horizon_of_short_runs() -> None:
    """Issue 16 §1: 0.99 from step 99 in a 588-step run (tf reached 0.985 by its end); a 26-step run's
    teacher averages about a quarter of the run, not its whole trajectory from random init."""
    assert ema.ema_rate(99, 0.99, "plan", 588) == pytest.approx(0.99)
    assert ema.ema_rate(5000, 0.99, "plan", 10_000) == pytest.approx(0.99)  # long runs: alpha, not the cap
    assert ema.ema_rate(587, 0.99, "tf") < 0.99 and ema.ema_rate(98, 0.99, "plan", 588) < 0.99
    assert ema.ema_rate(0, 0.99, "plan", 588) == 0.0  # teacher = student at the first step
    assert ema.ema_rate(20, 0.99, "plan", 26) == pytest.approx(1 - 4 / 26)
    assert ema.ema_rate(20, 0.99, "mt") == pytest.approx(1 - 1 / 21)
    assert ema.ema_rate(5, 0.99, "plan", None) == ema.ema_rate(5, 0.99, "mt")  # no plan yet: the MT rule


def test_ema_warm_start_rate_and_integer_buffers_copied() -> None:
    assert ema.ema_rate(0, 0.99) == 0.0 and ema.ema_rate(9, 0.99) == pytest.approx(0.9)
    assert ema.ema_rate(10_000, 0.99) == 0.99 and ema.ema_rate(0, 0.99, "none") == 0.99
    assert ema.ema_rate(0, 0.99, "tf") == pytest.approx(0.1) and ema.ema_rate(10_000, 0.99, "tf") == 0.99
    student = create_model("compact_cnn", 2, 1)
    teacher = ema.create_teacher(student)
    student.train()(torch.randn(4, 1, 16, 16))  # changes BN running stats and num_batches_tracked
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    ema.ema_update(teacher, student, 0.5, buffers=False)
    for key, value in teacher.state_dict().items():
        if "num_batches_tracked" in key:
            assert value.item() == 1 and value.dtype == torch.long
        elif "running" in key:
            assert torch.equal(value, before[key])  # params-only mode leaves float buffers alone
    ema.ema_update(teacher, student, 0.5, buffers=True)
    key = next(k for k in teacher.state_dict() if k.endswith("running_mean"))
    expected = 0.5 * before[key] + 0.5 * student.state_dict()[key]
    assert torch.allclose(teacher.state_dict()[key], expected)


def test_src_mt_adds_relation_term_and_supervised_has_no_consistency() -> None:
    out = make_method("src_mt").train_step(make_batch("multiclass", 50))
    assert {"loss_cons", "loss_relation"} <= set(out.logs)
    assert set(make_method("supervised").train_step(make_batch("multiclass", 50)).logs) == {"loss_sup"}


def test_params_unknown_key_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown"):
        make_method("mean_teacher", lamda_max=3.0)


def test_plain_reference_loop_has_no_teacher_and_only_flips() -> None:
    """The plain reference row (issue 16 §0): no EMA copy, one student, augmentation = mirror only."""
    method = make_method("plain")
    assert method.teacher is None and set(method.eval_models()) == {"student"}
    views = ViewMaker(AugConfig(), 0.5, 0.25)
    images = torch.randint(0, 255, (64, 1, 8, 8), dtype=torch.uint8)
    out = views.flipped(images, torch.Generator().manual_seed(0))
    plain, mirrored = views.plain(images), views.plain(images).flip(-1)
    same = [(torch.equal(o, p) or torch.equal(o, m)) for o, p, m in zip(out, plain, mirrored)]
    assert all(same) and any(not torch.equal(o, p) for o, p in zip(out, plain))


def no_dropout(method) -> None:
    for model in method.eval_models().values():
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_every_random_draw_of_a_step_comes_from_the_batch_generator(name: str) -> None:
    """Same batch, two different global seeds, no dropout: identical loss and logs in every phase (each run on
    its own copy: S2MTS2's stage 1 updates its queue and key encoder inside the step)."""
    import copy

    method = make_method(name, **({"pretrain_fraction": 0.3} if name == "s2mts2" else {}))
    no_dropout(method)
    for step in (0, ssl_step(method)):
        runs = []
        for global_seed in (1, 2):
            torch.manual_seed(global_seed)
            runs.append(copy.deepcopy(method).train_step(make_batch("multiclass", step)))
        assert runs[0].loss.item() == runs[1].loss.item() and runs[0].logs == runs[1].logs, (name, step)


@pytest.mark.parametrize("name", [n for n in SSL if n != "fixmatch"])  # fixmatch: tests/test_fixmatch.py
def test_consistency_loss_is_weighted_sup_plus_weight_times_the_terms(name: str) -> None:
    method = make_method(name, class_counts=np.array([1, 2, 9]), class_weights="balanced")
    captured = capture_student_pass(method)
    batch = make_batch("multiclass", ssl_step(method))
    out = method.train_step(batch)
    terms = {k: v for k, v in out.logs.items() if k.startswith("loss_") and k != "loss_sup"}
    assert terms and {"loss_sup", "weight"} <= set(out.logs) and set(out.logs) == {"loss_sup", "weight", *terms}
    assert out.logs["weight"] > 0
    weighted = torch.nn.functional.cross_entropy(captured["out"]["logits"][:4], batch.targets,
                                                 weight=method.class_weight)
    assert out.logs["loss_sup"] == pytest.approx(weighted.item(), rel=1e-5)
    expected = out.logs["loss_sup"] + out.logs["weight"] * sum(terms.values())
    assert out.loss.item() == pytest.approx(expected, rel=1e-5)


def test_mean_teacher_phases_and_the_first_consistency_step() -> None:
    assert make_method("mean_teacher", warmup_fraction=0.3).phase_fractions() == [
        ("warm_start", 0.0), ("consistency", 0.3)]
    assert make_method("mean_teacher").phase_fractions() == [("consistency", 0.0)]
    method = make_method("mean_teacher", warmup_fraction=0.5)
    assert method.ssl_start == 50
    assert set(method.train_step(make_batch("multiclass", 49)).logs) == {"loss_sup"}
    assert "loss_cons" in method.train_step(make_batch("multiclass", 50)).logs


@pytest.mark.parametrize(("consistency_on", "rows"), [("all", 10), ("unlabeled", 6)])
def test_teacher_sees_the_rows_the_consistency_covers(consistency_on: str, rows: int) -> None:
    method = make_method("mean_teacher", consistency_on=consistency_on)
    sizes: list[int] = []
    real = method.teacher_forward
    method.teacher_forward = lambda view: sizes.append(view.shape[0]) or real(view)
    method.train_step(make_batch("multiclass", 50))
    assert sizes == [rows]


def test_weighted_consistency_multiplies_the_gap_by_the_class_weights() -> None:
    from engine.methods.losses import consistency_mse

    method = make_method("mean_teacher", class_counts=np.array([1, 2, 9]), weighted_consistency=True,
                         class_weights="balanced")
    gen = torch.Generator().manual_seed(3)
    s, t = {"logits": torch.randn(5, 3, generator=gen)}, {"logits": torch.randn(5, 3, generator=gen)}
    got = method.unsupervised_terms(s, t)["cons"].item()
    assert got == pytest.approx(consistency_mse(s["logits"], t["logits"], "multiclass", method.class_weight).item())
    assert got != pytest.approx(consistency_mse(s["logits"], t["logits"], "multiclass").item())


@pytest.mark.parametrize(("params", "before_ssl", "after_ssl"), [
    ({"teacher_mode": "train"}, True, False),  # warm start averages buffers, consistency phase does not
    ({"teacher_mode": "eval"}, True, True),
    ({"teacher_mode": "train", "ema_buffers": True}, True, True),
    ({"teacher_mode": "eval", "ema_buffers": False}, True, False),
])
def test_bn_buffers_averaged_per_mode_and_phase(monkeypatch, params: dict, before_ssl: bool,
                                                after_ssl: bool) -> None:
    from engine.methods import mean_teacher as module

    method = make_method("mean_teacher", warmup_fraction=0.5, **params)
    calls: list[bool] = []
    real = module.ema_update
    monkeypatch.setattr(module, "ema_update", lambda t, s, r, buffers: calls.append(buffers) or real(t, s, r, buffers))
    method.after_step(method.ssl_start - 1)
    method.after_step(method.ssl_start)
    assert calls == [before_ssl, after_ssl]
