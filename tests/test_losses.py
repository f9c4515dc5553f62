"""Pure losses and schedules (METHODS §0-3)."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.methods import losses, ramps

torch.set_num_threads(1)  # tiny tensors; the shared 2-core box punishes oversubscription


def test_relation_consistency_zero_when_equal_positive_otherwise() -> None:
    feat = torch.randn(6, 16)
    assert losses.relation_consistency(feat, feat.clone()).item() == pytest.approx(0.0, abs=1e-7)
    assert losses.relation_consistency(feat, torch.randn(6, 16)).item() > 0


def test_relation_matrix_rows_are_l2_normalised_not_frobenius() -> None:
    rel = losses.relation_matrix(torch.randn(5, 8))
    assert rel.shape == (5, 5)
    assert torch.allclose(rel.norm(dim=1), torch.ones(5), atol=1e-5)


def test_relation_loss_is_sum_over_pairs_divided_by_n() -> None:
    a, b = torch.randn(4, 3), torch.randn(4, 3)
    diff = losses.relation_matrix(a) - losses.relation_matrix(b)
    assert losses.relation_consistency(a, b).item() == pytest.approx((diff ** 2).sum().item() / 4, rel=1e-5)


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_consistency_mse_is_mean_over_samples_and_classes(task: str) -> None:
    s, t = torch.randn(4, 3), torch.randn(4, 3)
    ps, pt = losses.probabilities(s, task), losses.probabilities(t, task)
    assert losses.consistency_mse(s, t, task).item() == pytest.approx(((ps - pt) ** 2).mean().item(), rel=1e-5)
    assert losses.consistency_mse(s, s, task).item() == 0.0
    assert losses.consistency_kl(s, s, task).item() == pytest.approx(0.0, abs=1e-6)


def test_multilabel_uses_sigmoid_not_softmax() -> None:
    logits = torch.zeros(2, 4)
    assert torch.allclose(losses.probabilities(logits, "multilabel"), torch.full((2, 4), 0.5))
    targets = torch.tensor([[1.0, 0, 1, 0], [0, 0, 0, 1]])
    assert losses.supervised_loss(logits, targets, "multilabel").item() == pytest.approx(math.log(2), rel=1e-5)


def test_jcl_gradient_reaches_query_only_and_variance_term_counts() -> None:
    q = torch.nn.functional.normalize(torch.randn(4, 8), dim=1).requires_grad_(True)
    keys = torch.nn.functional.normalize(torch.randn(4, 3, 8), dim=2)
    negs = torch.nn.functional.normalize(torch.randn(10, 8), dim=1)
    loss = losses.jcl_loss(q, keys, negs, tau=0.2, strength=0.5)
    loss.backward()
    assert torch.isfinite(loss) and q.grad is not None and q.grad.abs().sum() > 0
    without = losses.jcl_loss(q.detach(), keys, negs, tau=0.2, strength=0.0)
    assert loss.item() != pytest.approx(without.item())


def test_sigmoid_ramp_endpoints_and_gate() -> None:
    assert ramps.sigmoid_rampup(0, 10) == pytest.approx(math.exp(-5))
    assert ramps.sigmoid_rampup(10, 10) == 1.0 and ramps.sigmoid_rampup(50, 10) == 1.0
    w = ramps.weight_schedule(100, start=20, ramp_steps=30, gate_step=40)
    assert (w[:40] == 0).all() and w[-1] == 1.0 and np.all(np.diff(w[40:]) >= 0)


def test_ramp_per_epoch_advances_in_whole_epochs() -> None:
    w = ramps.weight_schedule(50, start=0, ramp_steps=30, steps_per_epoch=10)
    assert w[0] == w[9] and w[10] > w[9]


def test_lr_schedule_cosine_and_restart() -> None:
    f = ramps.lr_factors(100, "cosine", warmup_steps=0, restarts=(50,))
    assert f[0] == 1.0 and f[49] < 0.01 and f[50] == 1.0
    g = ramps.lr_factors(30, "exp_epoch", steps_per_epoch=10, gamma=0.9)
    assert g[10] == pytest.approx(0.9) and g[29] == pytest.approx(0.81)


def test_consistency_kl_multiclass_is_batchmean_kl_teacher_to_student() -> None:
    gen = torch.Generator().manual_seed(11)
    s, t = torch.randn(5, 3, generator=gen), torch.randn(5, 3, generator=gen)
    p_t = torch.softmax(t, 1)
    expected = (p_t * (torch.log(p_t) - torch.log_softmax(s, 1))).sum(1).mean()
    assert losses.consistency_kl(s, t, "multiclass").item() == pytest.approx(expected.item(), rel=1e-5)
    assert losses.consistency_kl(t, t, "multiclass").item() == pytest.approx(0.0, abs=1e-6)


def test_consistency_kl_multilabel_is_mean_bernoulli_kl() -> None:
    gen = torch.Generator().manual_seed(12)
    s, t = torch.randn(4, 3, generator=gen), torch.randn(4, 3, generator=gen)
    q, p = torch.sigmoid(s), torch.sigmoid(t)
    expected = (p * torch.log(p / q) + (1 - p) * torch.log((1 - p) / (1 - q))).mean()
    assert losses.consistency_kl(s, t, "multilabel").item() == pytest.approx(expected.item(), rel=1e-4)


def test_centred_relation_matrix_subtracts_the_per_feature_batch_mean() -> None:
    gen = torch.Generator().manual_seed(13)
    feats = torch.rand(4, 6, generator=gen) + 1.0
    centred = feats - feats.mean(dim=0, keepdim=True)
    expected = F.normalize(centred @ centred.t(), p=2, dim=1)
    assert torch.allclose(losses.relation_matrix(feats, centre=True), expected, atol=1e-6)
    global_mean = feats - feats.mean()
    assert not torch.allclose(losses.relation_matrix(feats, centre=True),
                              F.normalize(global_mean @ global_mean.t(), dim=1), atol=1e-4)
    rows = feats - feats.mean(dim=1, keepdim=True)
    assert not torch.allclose(losses.relation_matrix(feats, centre=True),
                              F.normalize(rows @ rows.t(), dim=1), atol=1e-4)


def test_relation_consistency_centres_both_sides_when_asked() -> None:
    gen = torch.Generator().manual_seed(14)
    a, b = torch.rand(5, 4, generator=gen) + 0.5, torch.rand(5, 4, generator=gen) + 0.5
    for centre in (False, True):
        diff = losses.relation_matrix(a, centre) - losses.relation_matrix(b, centre)
        expected = (diff ** 2).sum() / 5
        assert losses.relation_consistency(a, b, centre).item() == pytest.approx(expected.item(), rel=1e-5)
    mixed = losses.relation_matrix(a, False) - losses.relation_matrix(b, True)
    assert losses.relation_consistency(a, b, True).item() != pytest.approx(((mixed ** 2).sum() / 5).item())


def test_probabilities_softmax_for_multiclass_sigmoid_for_multilabel() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    assert torch.allclose(losses.probabilities(logits, "multiclass"), torch.softmax(logits, dim=1))
    assert torch.allclose(losses.probabilities(logits, "multilabel"), torch.sigmoid(logits))


def test_multilabel_supervised_loss_uses_class_weights_as_pos_weight() -> None:
    logits = torch.tensor([[0.3, -1.0], [2.0, 0.5]])
    targets = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    weights = torch.tensor([3.0, 0.5])
    expected = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=weights)
    assert torch.allclose(losses.supervised_loss(logits, targets, "multilabel", weights), expected)
    assert not torch.allclose(losses.supervised_loss(logits, targets, "multilabel"), expected)


def test_weighted_consistency_mse_multiplies_each_class_gap() -> None:
    gen = torch.Generator().manual_seed(15)
    s, t = torch.randn(4, 3, generator=gen), torch.randn(4, 3, generator=gen)
    weights = torch.tensor([0.5, 2.0, 4.0])
    gap = (torch.softmax(s, 1) - torch.softmax(t, 1)) ** 2
    assert torch.allclose(losses.consistency_mse(s, t, "multiclass", weights), (gap * weights).mean())
    assert torch.allclose(losses.consistency_mse(s, t, "multiclass", weights, sum_classes=True),
                          (gap * weights).sum(1).mean())
