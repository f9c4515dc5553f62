"""Segmentation methods one by one: exact loss terms, the arguments each hands to its losses and EMA, and that
every random draw of a step comes from the batch's generator (tests/test_seg.py: models, views, a real run)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.core.config import AugConfig
from engine.loaders.transforms import ViewMaker
from engine.methods import METHODS, Plan
from engine.methods.seg_losses import anatomical_contrast, pseudo_labels, region_contrast
from engine.models.unet import create_seg_model
from tests.method_spies import capture_student_pass
from tests.test_seg import make_seg_method, seg_batch, square_masks

torch.set_num_threads(1)


DETERMINISTIC_SEG = ["seg_supervised", "seg_mean_teacher", "secl"]  # seg_unimatch: tests/test_seg_unimatch.py


def seg_method_with(name: str, **params):
    """A seeded seg method with `params` (warm-up 0 unless given) and 9:1 class counts, planned for 100 steps."""
    torch.manual_seed(0)
    base = {} if name == "seg_supervised" else {"warmup_fraction": 0.0}
    method = METHODS[name](create_seg_model("unet_small", 2, 1), "segmentation", 2, ViewMaker(AugConfig(), 0.5, 0.25),
                           {**base, **params}, np.array([900, 100]))
    method.set_plan(Plan(total_steps=100, steps_per_epoch=10))
    return method


def test_seg_mean_teacher_consistency_is_the_per_pixel_softmax_mse() -> None:
    from engine.methods.losses import consistency_mse

    method = make_seg_method("seg_mean_teacher")
    gen = torch.Generator().manual_seed(7)
    s, t = torch.randn(2, 3, 4, 4, generator=gen), torch.randn(2, 3, 4, 4, generator=gen)
    terms = method.unsupervised_terms({"logits": s}, {"logits": t})
    expected = ((torch.softmax(s, 1) - torch.softmax(t, 1)) ** 2).mean()
    assert set(terms) == {"cons"} and terms["cons"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert terms["cons"].item() != pytest.approx(consistency_mse(s, t, "multilabel").item(), rel=1e-3)


def _secl_outs(seed: int = 8) -> tuple[dict, dict, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    student = {"proj": F.normalize(torch.randn(3, 4, 8, 8, generator=gen), dim=1),
               "logits": torch.randn(3, 2, 32, 32, generator=gen)}
    teacher = {"proj": F.normalize(torch.randn(3, 4, 8, 8, generator=gen), dim=1),
               "logits": torch.randn(3, 2, 32, 32, generator=gen) * 4}
    labels = torch.cat([square_masks(1), torch.full((2, 32, 32), -1)])  # one labeled row, two unlabeled
    return student, teacher, labels


def test_secl_region_terms_pass_grid_and_tau() -> None:
    s, t, labels = _secl_outs()
    terms = seg_method_with("secl", sampling="region", grid=2, tau=0.3).unsupervised_terms(s, t, labels)
    assert set(terms) == {"con"}
    assert terms["con"].item() == pytest.approx(region_contrast(s["proj"], t["proj"], 2, 0.3).item(), rel=1e-5)


def test_secl_anatomical_targets_are_confident_pseudo_labels_with_ground_truth_where_known() -> None:
    from engine.methods.seg_losses import downsample_mask

    s, t, labels = _secl_outs()
    pseudo = pseudo_labels(t["logits"], (8, 8), 0.8)
    truth = downsample_mask(labels, (8, 8))
    mixed = torch.where(truth >= 0, truth, pseudo)
    method = seg_method_with("secl", confidence=0.8, tau=0.2, n_anchor=1000, n_neg=1000)
    got = method.unsupervised_terms(s, t, labels, torch.Generator().manual_seed(0))["con"]
    assert got.item() == pytest.approx(anatomical_contrast(s["proj"], t["proj"], mixed, 0.2, 1000, 1000).item(),
                                       rel=1e-5)
    alone = seg_method_with("secl", confidence=0.8, tau=0.2, n_anchor=1000, n_neg=1000, labeled_in_contrast=False)
    got_alone = alone.unsupervised_terms(s, t, labels)["con"]
    assert got_alone.item() == pytest.approx(
        anatomical_contrast(s["proj"], t["proj"], pseudo, 0.2, 1000, 1000).item(), rel=1e-5)
    assert got.item() != pytest.approx(got_alone.item(), rel=1e-4)
    assert method.unsupervised_terms(s, t, None)["con"].item() == pytest.approx(got_alone.item(), rel=1e-5)


def test_secl_anatomical_subsampling_limits_and_generator_are_passed(monkeypatch) -> None:
    from engine.methods import secl as secl_module

    seen: dict = {}

    def spy(student, teacher, labels, tau, n_anchor, n_neg, gen):
        seen.update(tau=tau, n_anchor=n_anchor, n_neg=n_neg, gen=gen)
        return student.sum() * 0.0

    monkeypatch.setattr(secl_module, "anatomical_contrast", spy)
    s, t, labels = _secl_outs()
    gen = torch.Generator()
    seg_method_with("secl", tau=0.15, n_anchor=7, n_neg=9).unsupervised_terms(s, t, labels, gen)
    assert seen == {"tau": 0.15, "n_anchor": 7, "n_neg": 9, "gen": gen}


def test_secl_optional_pixel_consistency_is_scaled() -> None:
    from engine.methods.losses import consistency_mse

    s, t, labels = _secl_outs()
    terms = seg_method_with("secl", consistency_weight=0.5).unsupervised_terms(s, t, labels)
    assert set(terms) == {"con", "cons"}
    expected = 0.5 * consistency_mse(s["logits"], t["logits"], "multiclass")
    assert terms["cons"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert set(seg_method_with("secl").unsupervised_terms(s, t, labels)) == {"con"}


@pytest.mark.parametrize(("params", "step_offset", "encoder_buffers", "head_rate_is_zero"), [
    ({}, -1, True, True),  # warm-up: buffers averaged; decoder/projector copied
    ({}, 0, True, True),  # eval-mode teacher (the seg default) averages buffers
    ({"teacher_mode": "train"}, 0, False, True),
    ({"teacher_mode": "train", "ema_buffers": True}, 0, True, True),
    ({"teacher_mode": "train", "ema_scope": "full"}, 0, False, False),
])
def test_secl_ema_scope_rates_and_buffers(monkeypatch, params: dict, step_offset: int, encoder_buffers: bool,
                                          head_rate_is_zero: bool) -> None:
    from engine.methods import secl as secl_module

    method = seg_method_with("secl", warmup_fraction=0.5, **params)
    calls: list[tuple] = []
    monkeypatch.setattr(secl_module, "ema_update", lambda t, s, rate, buffers: calls.append((t, s, rate, buffers)))
    step = method.ssl_start + step_offset
    method.after_step(step)
    rate = secl_module.ema_rate(step, method.params.ema_alpha, method.params.ema_warmup, method.planned_steps())
    assert 0 < rate < 1
    (enc_t, enc_s, enc_rate, enc_buf), *heads = calls
    assert enc_t is method.teacher.encoder and enc_s is method.student.encoder
    assert enc_rate == rate and enc_buf is encoder_buffers
    assert [(t, s) for t, s, _, _ in heads] == [(method.teacher.decoder, method.student.decoder),
                                              (method.teacher.projector, method.student.projector)]
    for _, _, head_rate, head_buf in heads:
        assert head_rate == (0.0 if head_rate_is_zero else rate)
        assert head_buf is (encoder_buffers or head_rate_is_zero)


@pytest.mark.parametrize("name", DETERMINISTIC_SEG)
def test_seg_step_draws_come_from_the_batch_generator(name: str) -> None:
    import copy

    method = seg_method_with(name, **({} if name == "seg_supervised" else {"warmup_fraction": 0.3}))
    for step in (0, 50):
        runs = []
        for global_seed in (1, 2):
            torch.manual_seed(global_seed)
            runs.append(copy.deepcopy(method).train_step(seg_batch(step)))
        assert runs[0].loss.item() == runs[1].loss.item() and runs[0].logs == runs[1].logs, (name, step)


@pytest.mark.parametrize("name", DETERMINISTIC_SEG)
def test_seg_loss_is_weighted_ce_dice_plus_weight_times_terms(name: str) -> None:
    from engine.methods.seg_losses import seg_supervised_loss

    method = seg_method_with(name, class_weights="balanced", dice_weight=0.25)
    captured = capture_student_pass(method)
    batch = seg_batch(50)
    state = batch.gen.get_state()
    out = method.train_step(batch)
    _, masks = method.paired.weak(batch.labeled, batch.targets, torch.Generator().set_state(state))
    sup = seg_supervised_loss(captured["out"]["logits"][:2], masks, method.class_weight, 0.25)
    assert out.logs["loss_sup"] == pytest.approx(sup.item(), rel=1e-5)
    unweighted = seg_supervised_loss(captured["out"]["logits"][:2], masks, None, 0.25)
    assert out.logs["loss_sup"] != pytest.approx(unweighted.item(), rel=1e-5)
    terms = {k: v for k, v in out.logs.items() if k.startswith("loss_") and k != "loss_sup"}
    if name == "seg_supervised":
        assert set(out.logs) == {"loss_sup"} and out.loss.item() == pytest.approx(sup.item(), rel=1e-5)
        return
    assert terms and set(out.logs) == {"loss_sup", "weight", *terms} and out.logs["weight"] > 0
    expected = out.logs["loss_sup"] + out.logs["weight"] * sum(terms.values())
    assert out.loss.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(("consistency_on", "rows"), [("all", 4), ("unlabeled", 2)])
def test_seg_mean_teacher_rows_labels_and_generator_given_to_the_terms(consistency_on: str, rows: int) -> None:
    method = seg_method_with("seg_mean_teacher", warmup_fraction=0.5, consistency_on=consistency_on)
    assert method.ssl_start == 50
    assert set(method.train_step(seg_batch(49)).logs) == {"loss_sup"}
    seen: dict = {}
    real_teacher, real_terms = method.teacher_forward, method.unsupervised_terms
    method.teacher_forward = lambda view: seen.setdefault("teacher_rows", view.shape[0]) and real_teacher(view)

    def terms(student_out, teacher_out, labels=None, gen=None):
        seen.update(student_rows=student_out["logits"].shape[0], labels=labels, gen=gen)
        return real_terms(student_out, teacher_out, labels, gen)

    method.unsupervised_terms = terms
    batch = seg_batch(50)
    out = method.train_step(batch)
    assert "loss_cons" in out.logs
    assert seen["teacher_rows"] == rows and seen["student_rows"] == rows and seen["gen"] is batch.gen
    labels = seen["labels"]
    assert labels.shape[0] == rows and (labels[-2:] == -1).all()  # the unlabeled rows carry no ground truth
    if consistency_on == "all":
        assert (labels[:2] >= 0).float().mean() > 0.5  # the labeled rows carry their (warped) masks
