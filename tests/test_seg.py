"""Segmentation: U-Net contract, paired views, SECL sampling and losses, metrics, methods, a short real PH2 run."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.core.config import AugConfig, DataConfig, TrainConfig
from engine.loaders.datasets import ArrayData
from engine.loaders.paired import PairedViews
from engine.loaders.transforms import ViewMaker
from engine.methods import METHODS, Batch, Plan
from engine.methods.seg_losses import anatomical_contrast, info_nce, pseudo_labels, region_contrast
from engine.models.unet import SEG_MODELS, create_seg_model
from engine.scoring.metrics import binary_seg_scores, segmentation_metrics
from tests.conftest import shared_file

torch.set_num_threads(1)
SEG_METHODS = [name for name in METHODS.names() if "segmentation" in METHODS[name].tasks]


def square_masks(n: int, size: int = 32) -> torch.Tensor:
    masks = torch.zeros(n, size, size, dtype=torch.long)
    masks[:, size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 1
    return masks


@pytest.mark.parametrize("name", SEG_MODELS.names())
def test_seg_model_contract(name: str) -> None:
    out = create_seg_model(name, num_classes=3, in_chans=1)(torch.randn(2, 1, 64, 64))
    assert out["logits"].shape == (2, 3, 64, 64)
    assert out["feat"].shape[-2:] == (16, 16) and out["proj"].shape == (2, 128, 16, 16)
    assert torch.allclose(out["proj"].norm(dim=1), torch.ones(2, 16, 16), atol=1e-5)


def test_paired_views_move_image_and_mask_together() -> None:
    images = torch.zeros(4, 1, 32, 32, dtype=torch.uint8)
    masks = square_masks(4)
    images[masks.unsqueeze(1).bool()] = 255
    views = ViewMaker(AugConfig(weak_rotate_deg=30, weak_translate=0.1), 0.0, 1.0)
    image, warped = PairedViews(views, 2).weak(images, masks, torch.Generator().manual_seed(0))
    bright = image[:, 0] > 0.5
    inside = warped >= 0
    assert (bright[inside] == (warped[inside] == 1)).float().mean() > 0.97
    student, teacher = PairedViews(views, 2).two_views(images, torch.Generator().manual_seed(1))
    assert student.shape == teacher.shape == (4, 1, 32, 32) and not torch.equal(student, teacher)


def test_info_nce_and_region_contrast_decrease_on_a_toy_batch() -> None:
    torch.manual_seed(0)
    student = torch.randn(2, 8, 8, 8, requires_grad=True)
    teacher = F.normalize(torch.randn(2, 8, 8, 8), dim=1)
    labels = square_masks(2, 8)
    for loss_fn in (lambda s: region_contrast(s, teacher, grid=2, tau=0.1),
                    lambda s: anatomical_contrast(s, teacher, labels, tau=0.1, n_anchor=16, n_neg=16)):
        opt, losses = torch.optim.Adam([student], lr=0.05), []
        for _ in range(30):
            loss = loss_fn(F.normalize(student, dim=1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert all(math.isfinite(v) for v in losses) and losses[-1] < 0.6 * losses[0], losses


def test_anatomical_positives_from_same_class_negatives_from_the_other() -> None:
    """Embeddings equal a class code: same-class teacher prototype as positive, other-class negatives -> ~0
    loss; a teacher whose codes are swapped (its class-k region looks like the other class) -> large loss."""
    labels = square_masks(1, 8)
    codes = torch.eye(4)[:2]  # class 0 -> e0, class 1 -> e1
    emb = codes[labels].permute(0, 3, 1, 2)  # (1, 4, 8, 8)
    right = anatomical_contrast(emb, emb, labels, tau=0.1)
    wrong = anatomical_contrast(emb, codes[1 - labels].permute(0, 3, 1, 2), labels, tau=0.1)
    assert right.item() < 0.01 and wrong.item() > 5.0
    one_class = anatomical_contrast(emb, emb, torch.zeros_like(labels), tau=0.1)
    assert one_class.item() == 0.0  # nothing to contrast


def test_pseudo_labels_ignore_pixels_below_confidence() -> None:
    logits = torch.zeros(1, 2, 4, 4)
    logits[0, 1, :2] = 5.0  # confident lesion (p ~ 0.993)
    logits[0, 1, 2:] = 1.0  # p ~ 0.73: below 0.9
    labels = pseudo_labels(logits, (4, 4), 0.9)
    assert (labels[0, :2] == 1).all() and (labels[0, 2:] == -1).all()
    emb = F.normalize(torch.randn(1, 4, 4, 4), dim=1)
    low = labels.clone()
    low[0, :2, :2] = 0  # two confident classes; the unconfident rows must never be sampled
    nudged = emb.clone()
    nudged[0, :, 2:] = F.normalize(torch.randn(4, 2, 4), dim=0)
    assert torch.allclose(anatomical_contrast(emb, emb, low), anatomical_contrast(nudged, nudged, low))


def test_info_nce_matches_the_formula() -> None:
    a, p, n = F.normalize(torch.randn(3, 4), dim=1), F.normalize(torch.randn(3, 4), dim=1), torch.randn(5, 4)
    expected = -torch.log(torch.exp((a * p).sum(1) / 0.1) / (torch.exp((a * p).sum(1) / 0.1) +
                                                             torch.exp(a @ n.t() / 0.1).sum(1))).mean()
    assert torch.allclose(info_nce(a, p, n, 0.1), expected, atol=1e-4)


def test_binary_scores_and_empty_mask_rule() -> None:
    a = np.zeros((10, 10), bool)
    a[2:6, 2:6] = True
    b = np.roll(a, 1, axis=0)
    s = binary_seg_scores(a, b)
    assert s["dice"] == pytest.approx(0.75) and s["jaccard"] == pytest.approx(0.6)
    assert s["hd95"] == pytest.approx(1.0) and s["asd"] == pytest.approx(0.5)
    empty = np.zeros_like(a)
    both = binary_seg_scores(empty, empty)
    one = binary_seg_scores(a, empty)
    assert both["dice"] == 1.0 and one["dice"] == 0.0 and one["jaccard"] == 0.0
    assert math.isnan(one["hd95"]) and math.isnan(one["asd"]) and math.isnan(both["hd95"])
    m = segmentation_metrics(np.stack([a, a, empty]).astype(int), np.stack([a, b, a]).astype(int), ["bg", "fg"])
    assert m["dice"] == pytest.approx((1.0 + 0.75 + 0.0) / 3)
    assert m["hd95"] == pytest.approx(0.5)  # the NaN case is left out of the mean
    assert math.isnan(m["per_image"]["asd"][2])


def make_seg_method(name: str):
    torch.manual_seed(0)
    method = METHODS[name](create_seg_model("unet_small", 2, 1), "segmentation", 2,
                           ViewMaker(AugConfig(), 0.5, 0.25), {"warmup_fraction": 0.0} if name != "seg_supervised"
                           else {})
    method.set_plan(Plan(total_steps=100, steps_per_epoch=10))
    return method


def seg_batch(step: int, n_lab: int = 2, n_unl: int = 2) -> Batch:
    gen = torch.Generator().manual_seed(step)
    images = torch.randint(0, 256, (n_lab + n_unl, 1, 32, 32), dtype=torch.uint8, generator=gen)
    return Batch(images[:n_lab], square_masks(n_lab), images[n_lab:], step, gen)


@pytest.mark.parametrize(("name", "sampling"), [(name, "anatomical") for name in SEG_METHODS]
                         + [("secl", "region")])   # sampling is a SECL option
def test_seg_method_step_grads_student_not_teacher(name: str, sampling: str) -> None:
    method = make_seg_method(name)
    if name == "secl":
        method.params = METHODS["secl"].params_cls(warmup_fraction=0.0, sampling=sampling, confidence=0.0)
    out = method.train_step(seg_batch(50))
    assert torch.isfinite(out.loss) and (name == "seg_supervised" or out.logs["weight"] > 0)
    out.loss.backward()
    assert sum(p.grad.abs().sum().item() for p in method.student.parameters() if p.grad is not None) > 0
    assert all(p.grad is None and not p.requires_grad for p in method.teacher.parameters())
    if name != "seg_supervised":  # the unsupervised term alone still reaches the student encoder
        method.student.zero_grad()
        student_view, teacher_view = method.paired.two_views(seg_batch(51).unlabeled, torch.Generator())
        teacher_out = method.teacher_forward(teacher_view)
        teacher_out["logits"] = 8.0 * F.one_hot(square_masks(2), 2).permute(0, 3, 1, 2).float()  # confident, 2 classes
        terms = method.unsupervised_terms(method.student(student_view), teacher_out)
        loss = sum(terms.values())
        loss.backward()
        grads = [p.grad for p in method.student.encoder.parameters() if p.grad is not None]
        assert loss.item() > 0 and grads and sum(g.abs().sum().item() for g in grads) > 0
        assert all(p.grad is None for p in method.teacher.parameters())


def test_secl_teacher_averages_the_encoder_and_copies_the_decoder() -> None:
    method = make_seg_method("secl")
    with torch.no_grad():
        for p in method.student.parameters():
            p.add_(1.0)
    method.after_step(1000)
    enc_s, enc_t = next(method.student.encoder.parameters()), next(method.teacher.encoder.parameters())
    assert not torch.equal(enc_s, enc_t)
    for s, t in zip(method.student.decoder.parameters(), method.teacher.decoder.parameters()):
        assert torch.equal(s, t)


def test_run_training_segmentation_on_ph2_beats_background() -> None:
    """Short real run: 140 PH2 train images (all labeled), 64 px, CPU; val Dice selects the checkpoint."""
    root = shared_file("ph2_dermoscopy_seg_128/train.npz").parent
    train, val = np.load(root / "train.npz"), np.load(root / "val.npz")
    from engine.training.loop import run_training

    data = ArrayData(train["images"], train["masks"].astype(np.int64), ("background", "lesion"), "segmentation",
                     labeled_mask=np.ones(len(train["images"]), bool), val_images=val["images"],
                     val_labels=val["masks"].astype(np.int64))
    cfg = TrainConfig(method="seg_supervised", backbone="unet_small", epochs=4, patience=None, eval_batch_size=32,
                      data=DataConfig(image_size=64, labeled_batch=8, unlabeled_ratio=0.0))
    result = run_training(cfg, data)
    background = segmentation_metrics(np.zeros((len(val["masks"]), 64, 64), int),
                                      np.ones((len(val["masks"]), 64, 64), int))["dice"]
    dice = result.best_metrics[result.selected_role]["dice"]
    assert background == 0.0 and dice > 0.6, result.history
    assert "val_dice" in result.history[-1]


def tiny_seg_data(n: int = 12, size: int = 24) -> ArrayData:
    rng = np.random.default_rng(0)
    masks = np.zeros((n, size, size), np.int64)
    images = rng.integers(0, 60, (n, size, size, 3)).astype(np.uint8)
    for i in range(n):
        r, c = rng.integers(4, size - 12, 2)
        masks[i, r:r + 8, c:c + 8] = 1
    images[masks == 1] += 150
    labeled = np.arange(n) < n // 2
    return ArrayData(images, masks, ("background", "lesion"), "segmentation", labeled_mask=labeled,
                     val_images=images[:4], val_labels=masks[:4])


def test_segmentation_checkpoint_round_trip_and_inference(tmp_path) -> None:
    from engine.core.checkpoints import load_checkpoint
    from engine.inference.seg_infer import infer_segmentation, load_seg_models
    from engine.training.loop import run_training

    cfg = TrainConfig(method="secl", backbone="unet_small", epochs=2, patience=None, eval_batch_size=8,
                      method_params={"warmup_fraction": 0.5}, data=DataConfig(labeled_batch=2, unlabeled_ratio=1.0))
    result = run_training(cfg, tiny_seg_data(), checkpoint_dir=tmp_path)
    ckpt = load_checkpoint(result.last_checkpoint)
    assert ckpt["task"] == "segmentation" and ckpt["model"]["backbone"] == "unet_small"
    models, _ = load_seg_models(ckpt)
    for key, value in models["teacher"].state_dict().items():
        assert torch.equal(value, ckpt["teacher"][key])
    pred = infer_segmentation(result.best_checkpoint, tiny_seg_data().images[:5], device="cpu")
    assert pred.student_masks.shape == pred.teacher_masks.shape == (5, 24, 24)
    assert ((pred.student_entropy >= 0) & (pred.student_entropy <= 1)).all()
    assert pred.disagreement.shape == (5,) and ((pred.disagreement >= 0) & (pred.disagreement <= 1)).all()
    assert pred.student_features.shape[0] == 5


def test_classification_method_refuses_segmentation_data() -> None:
    from engine.training.loop import run_training

    with pytest.raises(ValueError, match="cannot train segmentation"):
        run_training(TrainConfig(method="mean_teacher", backbone="unet_small", epochs=1), tiny_seg_data())


def _tiny_seg_set(folder) -> object:
    """train/val/test.npz of 16 tiny masked images in `folder`; returns the bench's output folder."""
    data = tiny_seg_data(16)
    for split in ("train", "val", "test"):
        np.savez(folder / f"{split}.npz", images=data.images, masks=data.labels.astype(np.uint8),
                 labels=np.arange(16) % 2)
    return folder / "out"


def test_bench_seg_writes_rows_report_and_overlays(tmp_path) -> None:
    from engine.bench import seg

    out = _tiny_seg_set(tmp_path)
    argv = ["--data", str(tmp_path), "--methods", "seg_supervised,secl", "--label-fractions", "0.25", "--seeds", "0",
            "--epochs", "1", "--out", str(out)]
    assert seg.main(argv) == 0
    import json

    rows = json.loads((out / "results.json").read_text())["rows"]
    assert {r["method"] for r in rows} == {"seg_supervised", "secl"}
    assert {"val_dice", "test_dice", "test_jaccard", "test_hd95", "test_asd"} <= set(rows[0])
    assert (out / "test_dice.png").exists() and (out / "overlays_0.25.png").exists()
    assert seg.main(argv) == 0 and len(json.loads((out / "results.json").read_text())["rows"]) == 2  # resumed


def test_bench_seg_budget_run_adds_the_iteration_matched_supervised_twin(tmp_path) -> None:
    import json

    from engine.bench import seg

    out = _tiny_seg_set(tmp_path)
    argv = ["--data", str(tmp_path), "--methods", "seg_supervised,secl", "--label-fractions", "0.25", "--seeds", "0",
            "--budget-minutes", "0.05", "--threads", "1", "--out", str(out)]
    assert seg.main(argv) == 0
    rows = {r["method"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    assert set(rows) == {"seg_supervised", "secl", "seg_supervised@secl"}
    cells = out / "cells"
    ssl_steps = json.loads((cells / "secl_0.25_0.json").read_text())["steps_run"]
    twin = json.loads((cells / "seg_supervised@secl_0.25_0.json").read_text())
    assert twin["steps_run"] == ssl_steps and twin["config"]["budget_minutes"] is None
    assert rows["seg_supervised@secl"]["budget_minutes"] is None
    assert "| secl | seg_supervised@secl | 1 |" in (out / "results.md").read_text()   # its paired row
    assert seg.main(argv) == 0 and len(json.loads((out / "results.json").read_text())["rows"]) == 3  # resumed


def test_bench_seg_from_shadow_starts_ssl_cells_from_the_baseline_weights(tmp_path, monkeypatch) -> None:
    """The product protocol: SSL, its twin and the continued baseline all start from the shadow's selected
    weights with no in-run warm-up; the shadow itself trains from scratch."""
    import json

    import torch

    from engine.bench import seg
    from engine.core.checkpoints import load_checkpoint
    from engine.training import loop

    seen: dict[str, object] = {}
    real = loop.run_training

    def spy(cfg, data, *args, init_state=None, **kwargs):
        key = f"{cfg.method}:{cfg.max_steps is not None}:{len(seen)}"
        seen[key] = (init_state, dict(cfg.method_params or {}))
        return real(cfg, data, *args, init_state=init_state, **kwargs)

    monkeypatch.setattr(loop, "run_training", spy)
    out = _tiny_seg_set(tmp_path)
    argv = ["--data", str(tmp_path), "--methods", "secl,seg_supervised", "--label-fractions", "0.25", "--seeds", "0",
            "--budget-minutes", "0.03", "--threads", "1", "--from-shadow", "--out", str(out)]
    assert seg.main(argv) == 0
    rows = {r["method"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    assert set(rows) == {"seg_supervised", "seg_supervised_continued", "secl", "seg_supervised@secl"}
    assert rows["seg_supervised"]["init"] == "scratch"
    assert {rows[m]["init"] for m in ("seg_supervised_continued", "secl", "seg_supervised@secl")} == {"shadow"}
    saved = load_checkpoint(out / "shadows" / "0.25_0.pt")
    shadow = saved["state"]
    assert saved["role"] in ("student", "teacher")
    calls = list(seen.values())
    assert calls[0][0] is None  # the shadow (baseline first, whatever --methods' order)
    for init, _ in calls[1:]:
        assert init is not None and all(torch.equal(init[k], shadow[k]) for k in shadow)
    secl_params = next(p for k, (_, p) in seen.items() if k.startswith("secl:"))
    assert secl_params["warmup_fraction"] == 0.0
    report = (out / "results.md").read_text()
    assert "| secl | seg_supervised_continued | 1 |" in report and "Product protocol (--from-shadow)" in report
    assert "What the product delivers" in report and "| secl | 1 |" in report  # best_on_val: SSL or the shadow
    (out / "results.md").unlink()
    assert seg.main(["--data", str(tmp_path), "--report-only", "--out", str(out)]) == 0
    assert (out / "results.md").read_text() == report  # tables rewritten from results.json, nothing trained


def test_bench_seg_from_shadow_refuses_a_baseline_cell_without_its_weights(tmp_path) -> None:
    import json

    from engine.bench import seg

    out = _tiny_seg_set(tmp_path)
    common = ["--data", str(tmp_path), "--label-fractions", "0.25", "--seeds", "0", "--epochs", "1", "--out", str(out)]
    assert seg.main([*common, "--methods", "seg_supervised"]) == 0  # no --from-shadow: no weights kept
    with pytest.raises(SystemExit, match="shadows/0.25_0.pt is missing"):
        seg.main([*common, "--methods", "seg_supervised,secl", "--from-shadow"])
    runs = len(json.loads((out / "results.json").read_text())["runs"])
    assert seg.main([*common, "--methods", "secl", "--from-shadow"]) == 2  # the shadow must be in --methods
    assert len(json.loads((out / "results.json").read_text())["runs"]) == runs  # refused: no run recorded
