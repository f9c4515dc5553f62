"""seg_unimatch (issue 16 §2): teacher pseudo-labels above tau, two CutMixed strong views, feature perturbation."""
import pytest
import torch
import torch.nn.functional as F

from engine.methods.seg_unimatch import _cutmix_box, _masked_ce
from engine.models.unet import create_seg_model
from tests.method_spies import capture_student_pass
from tests.test_seg import make_seg_method, seg_batch


def _unimatch(**params):
    method = make_seg_method("seg_unimatch")
    method.params = type(method.params)(**{"warmup_fraction": 0.0, **params})
    return method


def test_confident_teacher_pseudo_labels_drive_all_three_unlabeled_losses() -> None:
    method = _unimatch(threshold=0.95)
    with torch.no_grad():
        method.teacher.decoder.head.bias.copy_(torch.tensor([-20.0, 20.0]))  # sure of "lesion" everywhere
    out = method.train_step(seg_batch(50))
    assert out.logs["mask_rate"] == 1.0 and min(out.logs["loss_s1"], out.logs["loss_s2"], out.logs["loss_fp"]) > 0
    with torch.no_grad():
        method.teacher.decoder.head.bias.zero_()
        method.teacher.decoder.head.weight.zero_()  # 50/50 everywhere: nothing passes tau
    out = method.train_step(seg_batch(50))
    assert out.logs["mask_rate"] == 0.0 and out.logs["loss_s1"] == out.logs["loss_fp"] == 0.0


def test_feature_perturbation_decodes_dropped_features_of_the_given_rows() -> None:
    torch.manual_seed(0)
    net = create_seg_model("unet_small", 2, 1).train()
    x = torch.randn(4, 1, 32, 32)
    out = net(x, fp_dropout=0.5, fp_rows=(1, 3))
    assert out["fp_logits"].shape == (2, 2, 32, 32) and not torch.allclose(out["fp_logits"], out["logits"][1:3])
    assert "fp_logits" not in net(x)


def test_cutmix_box_and_masked_ce_average_over_all_pixels() -> None:
    for seed in range(20):
        box = _cutmix_box(32, 32, torch.Generator().manual_seed(seed))
        assert 0.01 <= box.float().mean() <= 0.45
    logits = torch.zeros(1, 2, 2, 2)
    target = torch.tensor([[[1, -1], [-1, -1]]])
    assert torch.isclose(_masked_ce(logits, target), torch.log(torch.tensor(2.0)) / 4)


def test_strong_view_targets_follow_the_mixed_pixels() -> None:
    method = _unimatch(cutmix_prob=1.0)
    weak = torch.stack([torch.zeros(1, 16, 16), torch.ones(1, 16, 16)])  # image 0 dark, image 1 bright
    pseudo = torch.stack([torch.zeros(16, 16, dtype=torch.long), torch.ones(16, 16, dtype=torch.long)])
    method.views.aug = type(method.views.aug)(strong_brightness=0.0, strong_contrast=0.0, strong_noise_std=0.0,
                                              strong_erase_prob=0.0)
    for seed in range(5):
        view, target = method._strong(weak, pseudo, torch.Generator().manual_seed(seed))
        raw = view * method.views.std + method.views.mean  # back to [0, 1]
        assert torch.equal((raw[:, 0] > 0.5).long(), target)  # a mixed pixel carries its source's pseudo-label


def _saturated(method, bias: tuple[float, float]) -> None:
    with torch.no_grad():
        method.teacher.decoder.head.weight.zero_()
        method.teacher.decoder.head.bias.copy_(torch.tensor(bias))


def test_step_is_a_function_of_the_batch_generator_only() -> None:
    """Every augmentation draw (weak geometry, strong intensity, CutMix coin, order and box) comes from batch.gen:
    the same batch under two different global seeds gives the same loss (fp dropout ~0 so nothing else draws)."""
    method = _unimatch(fp_dropout=1e-9, cutmix_prob=0.5)
    results = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        results.append(method.train_step(seg_batch(50, n_unl=3)))
    assert results[0].loss.item() == results[1].loss.item()
    assert results[0].logs == results[1].logs


def test_loss_is_sup_plus_weight_times_the_split_of_strong_and_fp_losses(monkeypatch) -> None:
    from engine.methods import seg_unimatch as module

    method = _unimatch(strong_weight=0.3, fp_weight=0.7, threshold=0.6)
    calls: list = []
    real_ce = module._masked_ce
    monkeypatch.setattr(module, "_masked_ce", lambda logits, target: calls.append((logits, target)) or
                        real_ce(logits, target))
    captured = capture_student_pass(method)
    torch.manual_seed(0)
    with torch.no_grad():
        method.teacher.decoder.head.bias.copy_(torch.tensor([0.0, 1.0]))  # p(lesion) 0.73 > 0.6 somewhere
    out = method.train_step(seg_batch(50, n_lab=2, n_unl=3))
    logs = out.logs
    assert set(logs) == {"loss_sup", "loss_s1", "loss_s2", "loss_fp", "weight", "mask_rate"}
    assert captured["x"].shape[0] == 2 + 3 + 2 * 3  # labeled, weak, two strong views in one pass
    logits = captured["out"]["logits"]
    assert len(calls) == 3
    assert torch.equal(calls[0][0], logits[5:8]) and torch.equal(calls[1][0], logits[8:11])
    assert torch.equal(calls[2][0], captured["out"]["fp_logits"])
    s1, s2, fp = (real_ce(*c).item() for c in calls)
    assert logs["loss_s1"] == pytest.approx(s1) and logs["loss_s2"] == pytest.approx(s2) and s1 != s2
    assert logs["loss_fp"] == pytest.approx(fp) and logs["weight"] > 0
    expected = logs["loss_sup"] + logs["weight"] * (0.3 * (s1 + s2) / 2 + 0.7 * fp)
    assert out.loss.item() == pytest.approx(expected, rel=1e-5)


def test_supervised_part_uses_the_class_weights_and_dice_weight() -> None:
    from engine.methods.seg_losses import seg_supervised_loss
    from tests.test_seg_methods import seg_method_with

    method = seg_method_with("seg_unimatch", class_weights="balanced", dice_weight=0.25, fp_dropout=1e-9)
    real_weak = method.paired.weak
    captured = capture_student_pass(method)
    batch = seg_batch(50)
    gen_state = batch.gen.get_state()
    out = method.train_step(batch)
    _, masks = real_weak(batch.labeled, batch.targets, torch.Generator().set_state(gen_state))
    sup = seg_supervised_loss(captured["out"]["logits"][:2], masks, method.class_weight, 0.25)
    assert out.logs["loss_sup"] == pytest.approx(sup.item(), rel=1e-5)
    for other in (seg_supervised_loss(captured["out"]["logits"][:2], masks, None, 0.25),
                  seg_supervised_loss(captured["out"]["logits"][:2], masks, method.class_weight, 1.0)):
        assert out.logs["loss_sup"] != pytest.approx(other.item(), rel=1e-5)


def test_supervised_only_before_ssl_start_or_without_unlabeled_images() -> None:
    from tests.test_seg_methods import seg_method_with

    method = seg_method_with("seg_unimatch", warmup_fraction=0.5)
    assert method.ssl_start == 50
    assert set(method.train_step(seg_batch(49)).logs) == {"loss_sup"}
    assert "loss_s1" in method.train_step(seg_batch(50)).logs
    assert set(method.train_step(seg_batch(60, n_unl=0)).logs) == {"loss_sup"}
    assert "loss_s1" in method.train_step(seg_batch(60, n_unl=1)).logs


def test_pseudo_labels_keep_confidence_equal_to_tau_and_count_background() -> None:
    method = _unimatch(threshold=1.0)
    _saturated(method, (40.0, -40.0))  # background with probability exactly 1.0 in float32
    out = method.train_step(seg_batch(50))
    assert out.logs["mask_rate"] == 1.0 and out.logs["loss_fp"] > 0


def test_cutmix_mixes_two_images_and_never_a_single_one() -> None:
    method = _unimatch(cutmix_prob=1.0)
    method.views.aug = type(method.views.aug)(strong_brightness=0.0, strong_contrast=0.0, strong_noise_std=0.0,
                                              strong_erase_prob=0.0)
    weak = torch.stack([torch.zeros(1, 16, 16), torch.ones(1, 16, 16)])
    pseudo = torch.stack([torch.zeros(16, 16, dtype=torch.long), torch.ones(16, 16, dtype=torch.long)])
    mixed = [method._strong(weak, pseudo, torch.Generator().manual_seed(s))[1] for s in range(6)]
    assert any(not torch.equal(t, pseudo) for t in mixed)  # two images: some draws swap a box
    never = _unimatch(cutmix_prob=0.0)
    never.views.aug = method.views.aug
    assert all(torch.equal(never._strong(weak, pseudo, torch.Generator().manual_seed(s))[1], pseudo)
               for s in range(6))


def test_cutmix_box_follows_unimatchs_formula_and_draws_four_numbers() -> None:
    import math

    for seed in range(12):
        for h, w in ((32, 32), (20, 48)):
            gen = torch.Generator().manual_seed(seed)
            box = _cutmix_box(h, w, gen)
            r = torch.rand(5, generator=torch.Generator().manual_seed(seed)).tolist()
            area = (0.02 + 0.38 * r[0]) * h * w
            ratio = math.exp(math.log(0.3) + (math.log(1 / 0.3) - math.log(0.3)) * r[1])
            bh = min(h, max(1, int((area * ratio) ** 0.5)))
            bw = min(w, max(1, int((area / ratio) ** 0.5)))
            y0, x0 = int(r[2] * (h - bh + 1)), int(r[3] * (w - bw + 1))
            expected = torch.zeros(h, w, dtype=torch.bool)
            expected[y0:y0 + bh, x0:x0 + bw] = True
            assert torch.equal(box, expected), (seed, h, w)
            assert torch.rand(1, generator=gen).item() == r[4]  # exactly four draws consumed


def test_cutmix_box_can_reach_the_last_row_and_column_and_stays_at_least_one_pixel() -> None:
    bottoms, rights = set(), set()
    for seed in range(400):
        box = _cutmix_box(6, 6, torch.Generator().manual_seed(seed))
        rows, cols = box.any(1).nonzero().squeeze(1), box.any(0).nonzero().squeeze(1)
        assert len(rows) >= 1 and len(cols) >= 1
        bottoms.add(int(rows.max()))
        rights.add(int(cols.max()))
    assert 5 in bottoms and 5 in rights


def test_masked_ce_per_pixel_with_background_targets_and_empty_input() -> None:
    logits = torch.tensor([[[[2.0, 0.0], [0.0, 1.0]], [[0.0, 3.0], [1.0, 0.0]]]])  # (1, 2, 2, 2)
    target = torch.tensor([[[0, 1], [-1, 0]]])
    per_pixel = F.cross_entropy(logits, target.clamp(min=0), reduction="none")
    expected = (per_pixel[0, 0, 0] + per_pixel[0, 0, 1] + per_pixel[0, 1, 1]) / 4
    assert torch.isclose(_masked_ce(logits, target), expected)
    empty = torch.zeros(0, 2, 4, 4, requires_grad=True)
    zero = _masked_ce(empty, torch.zeros(0, 4, 4, dtype=torch.long))
    assert zero.item() == 0.0 and zero.requires_grad
