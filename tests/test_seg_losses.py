"""Exact values of the segmentation losses against hand-written references: SECL, UniMatch and the supervised
U-Net all train on these, and a wrong reduction or a dropped ignore mask still "trains", only worse."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.methods import seg_losses as sl


def _reference_dice(logits: torch.Tensor, masks: torch.Tensor, first: int, eps: float = 1e-5) -> torch.Tensor:
    probs = torch.softmax(logits, dim=1)
    scores = []
    for k in range(first, logits.shape[1]):
        valid = masks >= 0
        p = probs[:, k][valid]
        g = (masks[valid] == k).float()
        scores.append((2 * (p * g).sum() + eps) / (p.sum() + g.sum() + eps))
    return 1 - torch.stack(scores).mean()


def _case(seed: int = 0, k: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, k, 5, 6, generator=gen) * 2
    masks = torch.randint(0, k, (2, 5, 6), generator=gen)
    masks[0, 0, :3] = -1
    masks[1, 4, 2:] = -1
    return logits, masks


def test_dice_loss_pools_the_batch_skips_background_and_ignores_minus_one() -> None:
    logits, masks = _case()
    assert torch.allclose(sl.dice_loss(logits, masks), _reference_dice(logits, masks, 1), atol=1e-6)
    assert torch.allclose(sl.dice_loss(logits, masks, include_background=True),
                          _reference_dice(logits, masks, 0), atol=1e-6)
    assert not torch.allclose(sl.dice_loss(logits, masks), sl.dice_loss(logits, masks, include_background=True))


def test_dice_loss_eps_and_single_channel() -> None:
    logits = torch.zeros(1, 2, 2, 2)
    masks = torch.zeros(1, 2, 2, dtype=torch.long)  # no foreground: 0.5 predicted everywhere
    # foreground Dice = eps / (2 + eps)
    assert sl.dice_loss(logits, masks).item() == pytest.approx(1 - 1e-5 / (2 + 1e-5), abs=1e-7)
    assert sl.dice_loss(logits, masks, eps=1.0).item() == pytest.approx(1 - 1 / 3, abs=1e-6)
    single = sl.dice_loss(torch.zeros(1, 1, 2, 2), masks)  # one channel: its own class counts
    assert single.item() == pytest.approx(0.0, abs=1e-6)


def test_dice_loss_perfect_prediction_is_zero() -> None:
    masks = torch.tensor([[[0, 1], [1, 0]]])
    logits = F.one_hot(masks, 2).permute(0, 3, 1, 2).float() * 40
    assert sl.dice_loss(logits, masks).item() == pytest.approx(0.0, abs=1e-5)


def test_seg_supervised_loss_is_ce_plus_weighted_dice_and_empty_is_zero_with_a_graph() -> None:
    logits, masks = _case(1)
    ce = F.cross_entropy(logits, masks, ignore_index=-1)
    dice = _reference_dice(logits, masks, 1)
    assert torch.allclose(sl.seg_supervised_loss(logits, masks), ce + dice, atol=1e-5)
    assert torch.allclose(sl.seg_supervised_loss(logits, masks, dice_weight=0.5), ce + 0.5 * dice, atol=1e-5)
    assert torch.allclose(sl.seg_supervised_loss(logits, masks, dice_weight=0.0), ce, atol=1e-6)
    weights = torch.tensor([0.2, 1.0, 3.0])
    weighted = F.cross_entropy(logits, masks, weight=weights, ignore_index=-1) + dice
    assert torch.allclose(sl.seg_supervised_loss(logits, masks, class_weights=weights), weighted, atol=1e-5)
    empty = torch.zeros(0, 3, 5, 6, requires_grad=True)
    out = sl.seg_supervised_loss(empty, torch.zeros(0, 5, 6, dtype=torch.long))
    assert out.item() == 0.0 and out.requires_grad


def test_info_nce_per_anchor_negatives_and_temperature() -> None:
    gen = torch.Generator().manual_seed(2)
    a = F.normalize(torch.randn(3, 4, generator=gen), dim=1)
    p = F.normalize(torch.randn(3, 4, generator=gen), dim=1)
    n = F.normalize(torch.randn(3, 5, 4, generator=gen), dim=2)
    for tau in (0.1, 0.5):
        pos = (a * p).sum(1) / tau
        neg = torch.stack([n[i] @ a[i] for i in range(3)]) / tau
        expected = (-pos + torch.logsumexp(torch.cat([pos[:, None], neg], 1), 1)).mean()
        assert torch.allclose(sl.info_nce(a, p, n, tau), expected, atol=1e-5)
    assert sl.info_nce(a, p, n, 0.1).item() != pytest.approx(sl.info_nce(a, p, n, 0.5).item())


def test_region_vectors_pool_cells_row_major_and_renormalise() -> None:
    emb = torch.zeros(2, 2, 4, 4)
    emb[0, 0, :2, 2:] = 3.0  # image 0, top-right cell points along channel 0
    emb[0, 1] = 1.0
    emb[1, 0] = 1.0
    emb[1, 1, 2:, :2] = -2.0  # image 1, bottom-left cell
    vec = sl.region_vectors(emb, 2)
    assert vec.shape == (8, 2)
    assert torch.allclose(vec.norm(dim=1), torch.ones(8))
    assert torch.allclose(vec[1], F.normalize(torch.tensor([3.0, 1.0]), dim=0))  # image 0, row 0, col 1
    assert torch.allclose(vec[0], torch.tensor([0.0, 1.0]))
    assert torch.allclose(vec[4], torch.tensor([1.0, 0.0]))
    assert torch.allclose(vec[6], F.normalize(torch.tensor([1.0, -2.0]), dim=0))  # image 1, row 1, col 0


def test_region_contrast_equals_cross_entropy_over_cells() -> None:
    gen = torch.Generator().manual_seed(3)
    s = F.normalize(torch.randn(2, 3, 4, 4, generator=gen), dim=1)
    t = F.normalize(torch.randn(2, 3, 4, 4, generator=gen), dim=1)
    vs, vt = sl.region_vectors(s, 2), sl.region_vectors(t, 2)
    expected = F.cross_entropy(vs @ vt.t() / 0.2, torch.arange(8))
    assert torch.allclose(sl.region_contrast(s, t, grid=2, tau=0.2), expected, atol=1e-5)
    assert sl.region_contrast(s, t).item() == pytest.approx(
        F.cross_entropy(sl.region_vectors(s, 4) @ sl.region_vectors(t, 4).t() / 0.1, torch.arange(32)).item(),
        rel=1e-5)


def test_pseudo_labels_threshold_is_strict_and_downsampling_keeps_ignore() -> None:
    logits = torch.zeros(1, 2, 4, 4)
    logits[0, 1, :, :2] = 3.0
    conf = torch.softmax(torch.tensor([0.0, 3.0]), 0)[1].item()
    at = sl.pseudo_labels(logits, (4, 4), threshold=conf)  # conf == threshold is kept
    assert (at[0, :, :2] == 1).all() and (at[0, :, 2:] == -1).all()
    default = sl.pseudo_labels(logits, (4, 4))  # 0.9 default: 0.953 kept, 0.5 dropped
    assert torch.equal(default, at)
    small = sl.pseudo_labels(logits, (2, 2), threshold=0.4)
    assert small.shape == (1, 2, 2) and small.dtype == torch.long
    assert small.tolist() == [[[1, 0], [1, 0]]]


def test_downsample_mask_nearest_and_identity() -> None:
    masks = torch.tensor([[[1, 1, -1, -1], [1, 1, -1, -1], [0, 0, 2, 2], [0, 0, 2, 2]]])
    assert sl.downsample_mask(masks, (4, 4)) is masks
    down = sl.downsample_mask(masks, (2, 2))
    assert down.tolist() == [[[1, -1], [0, 2]]] and down.dtype == torch.long


def test_subsample_keeps_short_indices_and_draws_without_replacement() -> None:
    index = torch.arange(10, 20)
    assert sl._subsample(index, 10, None) is index
    assert sl._subsample(index, 12, None) is index
    gen = torch.Generator().manual_seed(0)
    drawn = sl._subsample(index, 4, gen)
    assert len(drawn) == 4 and len(set(drawn.tolist())) == 4 and set(drawn.tolist()) <= set(index.tolist())
    expected = index[torch.randperm(10, generator=torch.Generator().manual_seed(0))[:4]]
    assert torch.equal(drawn, expected)


def _anatomical_reference(s: torch.Tensor, t: torch.Tensor, labels: torch.Tensor, tau: float) -> torch.Tensor:
    d = s.shape[1]
    s, t, flat = s.permute(0, 2, 3, 1).reshape(-1, d), t.permute(0, 2, 3, 1).reshape(-1, d), labels.reshape(-1)
    classes = sorted(int(k) for k in flat[flat >= 0].unique())
    protos = {k: F.normalize(t[flat == k].mean(0), dim=0) for k in classes}
    terms = []
    for k in classes:
        bank = torch.cat([t[(flat >= 0) & (flat != k)], torch.stack([protos[j] for j in classes if j != k])])
        for anchor in s[flat == k]:
            logits = torch.cat([(anchor @ protos[k]).view(1), bank @ anchor]) / tau
            terms.append(-torch.log_softmax(logits, 0)[0])
    return torch.stack(terms).mean()


def test_anatomical_contrast_equals_the_reference_when_nothing_is_subsampled() -> None:
    gen = torch.Generator().manual_seed(4)
    s = F.normalize(torch.randn(2, 3, 4, 4, generator=gen), dim=1)
    t = F.normalize(torch.randn(2, 3, 4, 4, generator=gen), dim=1)
    labels = torch.randint(-1, 3, (2, 4, 4), generator=gen)
    got = sl.anatomical_contrast(s, t, labels, tau=0.2, n_anchor=1000, n_neg=1000)
    assert torch.allclose(got, _anatomical_reference(s, t, labels, 0.2), atol=1e-5)
    assert torch.allclose(sl.anatomical_contrast(s, t, labels), _anatomical_reference(s, t, labels, 0.1),
                          atol=1e-5)  # defaults: tau 0.1, limits above the 32 pixels


def test_anatomical_contrast_subsampling_is_bounded_and_seeded() -> None:
    gen = torch.Generator().manual_seed(5)
    s = F.normalize(torch.randn(1, 3, 8, 8, generator=gen, requires_grad=False), dim=1).requires_grad_()
    t = F.normalize(torch.randn(1, 3, 8, 8, generator=gen), dim=1)
    labels = torch.randint(0, 2, (1, 8, 8), generator=gen)
    one = sl.anatomical_contrast(s, t, labels, n_anchor=4, n_neg=3, gen=torch.Generator().manual_seed(9))
    two = sl.anatomical_contrast(s, t, labels, n_anchor=4, n_neg=3, gen=torch.Generator().manual_seed(9))
    full = sl.anatomical_contrast(s, t, labels)
    assert torch.equal(one, two) and not torch.allclose(one, full)
    one.backward()
    touched = (s.grad.abs().sum(dim=1) > 0).sum().item()
    assert touched == 8  # 4 anchors per class, 2 classes
