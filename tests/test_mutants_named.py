"""Tests aimed at the mutants issue 16 names: each fails when that piece of a method is wrong.

`python -m engine.bench.named_mutants` applies every named mutant to a copy of the code and shows each one
killed by the method tests (this file among them); `mutmut run` covers the rest of engine/methods.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.methods import ema, losses
from engine.methods import secl as secl_module
from tests.test_methods import make_batch, make_method
from tests.test_seg import make_seg_method, seg_batch


def _seeded_loss(method, step: int = 60) -> float:
    torch.manual_seed(1)  # dropout draws
    return float(method.train_step(make_batch("multiclass", step)).loss)


def test_mean_teacher_consistency_uses_the_teacher_model() -> None:
    method = make_method("mean_teacher")
    before = _seeded_loss(method)
    with torch.no_grad():
        method.teacher.fc.bias.add_(torch.tensor([5.0, -5.0, 0.0]))
    assert _seeded_loss(method) != before  # a teacher that is not consulted changes nothing


def test_src_mt_relation_term_compares_student_with_teacher_features() -> None:
    method = make_method("src_mt")
    with torch.no_grad():
        for p in method.teacher.parameters():
            p.mul_(0.5)
    out = method.train_step(make_batch("multiclass", 60))
    assert out.logs["loss_relation"] > 1e-6  # student vs itself would be exactly 0


def test_student_sees_the_strong_view_of_unlabeled_images() -> None:
    method = make_method("mean_teacher")
    seen: list[int] = []
    real = method.views.strong
    method.views.strong = lambda images, gen: seen.append(images.shape[0]) or real(images, gen)
    batch = make_batch("multiclass", 60)
    method.train_step(batch)
    assert seen == [batch.unlabeled.shape[0]]


def test_eval_mode_teacher_averages_bn_buffers_in_the_consistency_phase() -> None:
    method = make_method("mean_teacher", teacher_mode="eval")
    method.student.train()(torch.randn(8, 1, 16, 16) * 3 + 2)  # move the student's running statistics
    key = next(k for k in method.teacher.state_dict() if k.endswith("running_mean"))
    before = method.teacher.state_dict()[key].clone()
    student = method.student.state_dict()[key]
    step = method.ssl_start + 200
    method.after_step(step)
    rate = ema.ema_rate(step, 0.99, "plan", method.planned_steps())
    assert torch.allclose(method.teacher.state_dict()[key], rate * before + (1 - rate) * student, atol=1e-6)


def test_jcl_loss_matches_the_formula_with_its_variance_term() -> None:
    torch.manual_seed(0)
    q = F.normalize(torch.randn(3, 6), dim=1)
    keys = F.normalize(torch.randn(3, 4, 6), dim=2)
    negs = F.normalize(torch.randn(5, 6), dim=1)
    tau, strength = 0.2, 0.5
    mu = keys.mean(1)
    q_sigma_q = (torch.einsum("bd,bmd->bm", q, keys - mu[:, None]) ** 2).mean(1)
    spread = strength / (2 * tau * tau) * q_sigma_q
    logits = torch.cat([((q * mu).sum(1) / tau + spread)[:, None], q @ negs.t() / tau], 1)
    expected = F.cross_entropy(logits, torch.zeros(3, dtype=torch.long)) + spread.mean()
    assert torch.allclose(losses.jcl_loss(q, keys, negs, tau, strength), expected, atol=1e-6)
    assert spread.mean() > 0.01  # the variance term is not negligible in this check


def _secl(**params):
    method = make_seg_method("secl")
    method.params = type(method.params)(**{"warmup_fraction": 0.0, "confidence": 0.0, **params})
    return method


def test_secl_teacher_view_shares_the_student_views_geometry() -> None:
    method = _secl()
    images = torch.zeros(4, 1, 32, 32, dtype=torch.uint8)
    images[:, :, 10:16, 18:24] = 255  # one bright square; intensity changes keep it where it is
    student, teacher = method.paired.two_views(images, torch.Generator().manual_seed(3))
    for s, t in zip(student, teacher):
        s_peak = (s[0] > s[0].mean()).float()
        t_peak = (t[0] > t[0].mean()).float()
        assert (s_peak * t_peak).sum() / t_peak.sum() > 0.8


def test_secl_contrasts_student_with_teacher_embeddings_and_pseudo_labels_from_the_teacher(monkeypatch) -> None:
    method = _secl()
    seen: dict[str, torch.Tensor] = {}
    real_forward, real_pseudo, real_contrast = method.teacher_forward, secl_module.pseudo_labels, \
        secl_module.anatomical_contrast

    def teacher_forward(view):
        seen["teacher"] = real_forward(view)
        return seen["teacher"]

    def pseudo(logits, size, confidence):
        seen["pseudo_from"] = logits
        return real_pseudo(logits, size, confidence)

    def contrast(s_emb, t_emb, targets, *rest):
        seen["t_emb"], seen["targets"] = t_emb, targets
        return real_contrast(s_emb, t_emb, targets, *rest)

    from engine.loaders.paired import PairedViews

    real_weak = PairedViews.weak

    def weak(self, images, masks, gen):
        view, seen["masks"] = real_weak(self, images, masks, gen)  # labeled masks, warped with their images
        return view, seen["masks"]

    method.teacher_forward = teacher_forward
    monkeypatch.setattr(PairedViews, "weak", weak)
    monkeypatch.setattr(secl_module, "pseudo_labels", pseudo)
    monkeypatch.setattr(secl_module, "anatomical_contrast", contrast)
    batch = seg_batch(50)
    method.train_step(batch)
    assert torch.equal(seen["pseudo_from"], seen["teacher"]["logits"])
    assert torch.equal(seen["t_emb"], seen["teacher"]["proj"])
    truth = secl_module.downsample_mask(seen["masks"], tuple(seen["targets"].shape[-2:]))
    # the labeled rows contrast with their ground truth wherever it exists (never ignored for pseudo-labels)
    labeled = seen["targets"][: batch.labeled.shape[0]]
    assert torch.equal(labeled[truth >= 0], truth[truth >= 0])


def test_secl_teacher_encoder_moves_toward_the_student() -> None:
    method = _secl()
    teacher_before = [p.clone() for p in method.teacher.encoder.parameters()]
    with torch.no_grad():
        for p in method.student.parameters():
            p.add_(1.0)
    method.after_step(1000)
    rate = ema.ema_rate(1000, 0.99, "plan", method.planned_steps())
    assert rate > 0.9
    for before, t, s in zip(teacher_before, method.teacher.encoder.parameters(), method.student.encoder.parameters()):
        assert torch.allclose(t, rate * before + (1 - rate) * s, atol=1e-6)
