"""seg_unimatch (issue 16 §2): teacher pseudo-labels above tau, two CutMixed strong views, feature perturbation."""
import torch

from engine.methods.seg_unimatch import _cutmix_box, _masked_ce
from engine.models.unet import create_seg_model
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
