"""FixMatch (issue 16 §2): teacher pseudo-labels from the weak view, strong student view, thresholds."""
import pytest
import torch

from engine.core.config import AugConfig
from engine.loaders.randaugment import OPS, rand_augment
from engine.loaders.transforms import ViewMaker
from engine.methods.fixmatch import pseudo_label_loss
from tests.method_spies import capture_student_pass
from tests.test_methods import make_batch, make_method


def test_only_confident_rows_count_and_the_mean_is_over_all_rows() -> None:
    teacher = torch.tensor([[10.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.0, 10.0], [0.0, 0.2, 0.1]])
    student = torch.randn(4, 3)
    loss, rate = pseudo_label_loss(student, teacher, "multiclass", 0.95)
    ce = torch.nn.functional.cross_entropy(student, torch.tensor([0, 0, 2, 1]), reduction="none")
    assert rate == 0.5 and torch.allclose(loss, (ce[0] + ce[2]) / 4)


def test_multilabel_thresholds_each_label_both_ways() -> None:
    teacher = torch.tensor([[5.0, -5.0, 0.0]])  # confident positive, confident negative, unsure
    student = torch.zeros(1, 3)
    loss, rate = pseudo_label_loss(student, teacher, "multilabel", 0.95)
    assert rate == pytest.approx(2 / 3)
    assert torch.allclose(loss, torch.tensor(2 * 0.6931472 / 3), atol=1e-5)  # BCE(0, y) = log 2 on 2 of 3


def test_pseudo_labels_come_from_the_teacher_and_the_student_sees_the_strong_view() -> None:
    method = make_method("fixmatch", threshold=0.95)
    with torch.no_grad():  # a teacher sure of class 2 for everything, a student that disagrees
        method.teacher.fc.weight.zero_()
        method.teacher.fc.bias.copy_(torch.tensor([0.0, 0.0, 20.0]))
    views: list[str] = []
    for kind in ("weak", "randaugment"):
        real = getattr(method.views, kind)
        setattr(method.views, kind, lambda x, g, *a, _real=real, _kind=kind: views.append(_kind) or _real(x, g, *a))
    batch = make_batch("multiclass", 60)
    out = method.train_step(batch)
    assert out.logs["mask_rate"] == 1.0 and out.logs["loss_pseudo"] > 0
    assert views.count("randaugment") == 1 and views.count("weak") == 2  # teacher's unlabeled + labeled
    with torch.no_grad():
        method.student.fc.bias.copy_(torch.tensor([0.0, 0.0, 30.0]))  # student now agrees with the teacher
    assert method.train_step(make_batch("multiclass", 60)).logs["loss_pseudo"] < out.logs["loss_pseudo"]


def test_randaugment_is_seeded_bounded_and_changes_images() -> None:
    x = torch.rand(32, 1, 24, 24)
    a = rand_augment(x, torch.Generator().manual_seed(1))
    b = rand_augment(x, torch.Generator().manual_seed(1))
    c = rand_augment(x, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0.0 and a.max() <= 1.0 and a.shape == x.shape
    assert ((a - x).abs().flatten(1).amax(dim=1) > 0).all()  # every image changed (cutout at least)
    assert len(OPS) >= 10
    view = ViewMaker(AugConfig(), 0.5, 0.25).randaugment(torch.randint(0, 256, (4, 1, 16, 16), dtype=torch.uint8),
                                                         torch.Generator().manual_seed(0))
    assert view.shape == (4, 1, 16, 16) and torch.isfinite(view).all()


def test_empty_unlabeled_rows_give_zero_loss_with_a_graph_and_rate_zero() -> None:
    for task in ("multiclass", "multilabel"):
        student = torch.zeros(0, 3, requires_grad=True)
        loss, rate = pseudo_label_loss(student, torch.zeros(0, 3), task, 0.95)
        assert loss.item() == 0.0 and loss.requires_grad and rate == 0.0


def test_thresholds_are_inclusive_on_both_sides() -> None:
    sure = torch.tensor([[200.0, -200.0, 0.0]])  # softmax max exactly 1.0 in float32
    _, rate = pseudo_label_loss(torch.zeros(1, 3), sure, "multiclass", 1.0)
    assert rate == 1.0
    extremes = torch.tensor([[200.0, -200.0]])  # sigmoid exactly 1.0 and exactly 0.0
    _, rate = pseudo_label_loss(torch.zeros(1, 2), extremes, "multilabel", 1.0)
    assert rate == 1.0


def test_multilabel_targets_round_half_up_and_loss_is_masked_per_label() -> None:
    student = torch.tensor([[1.0, -0.5, 2.0]])
    teacher = torch.tensor([[0.0, 4.0, -0.1]])  # p = 0.5 (-> 1), 0.982 (-> 1), 0.475 (-> 0)
    loss, rate = pseudo_label_loss(student, teacher, "multilabel", 0.5)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(student, torch.tensor([[1.0, 1.0, 0.0]]),
                                                               reduction="none")
    assert rate == 1.0 and torch.allclose(loss, bce.mean())
    loss, rate = pseudo_label_loss(student, teacher, "multilabel", 0.9)  # only the 0.982 label is kept
    assert rate == pytest.approx(1 / 3) and torch.allclose(loss, bce[0, 1] / 3)


def test_fixmatch_loss_is_weighted_sup_plus_weight_times_pseudo() -> None:
    import numpy as np

    method = make_method("fixmatch", class_counts=np.array([1, 2, 9]), warmup_fraction=0.5, class_weights="balanced")
    assert set(method.train_step(make_batch("multiclass", 49)).logs) == {"loss_sup"}
    captured = capture_student_pass(method)
    batch = make_batch("multiclass", 50)
    out = method.train_step(batch)
    assert set(out.logs) == {"loss_sup", "loss_pseudo", "weight", "mask_rate"}
    logits = captured["out"]["logits"][:4]
    weighted = torch.nn.functional.cross_entropy(logits, batch.targets, weight=method.class_weight)
    assert out.logs["loss_sup"] == pytest.approx(weighted.item(), rel=1e-5)
    assert out.logs["weight"] == 1.0 and out.logs["loss_pseudo"] > 0
    expected = out.logs["loss_sup"] + out.logs["weight"] * out.logs["loss_pseudo"]
    assert out.loss.item() == pytest.approx(expected, rel=1e-5)
