"""run_training end to end on tiny tensors, checkpoint/resume, failure modes, and a short real-data run."""
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.core.checkpoints import load_checkpoint
from engine.core.config import DataConfig, TrainConfig
from engine.inference.infer import infer
from engine.loaders.datasets import ArrayData, stratified_subset
from engine.methods import METHODS, StepOutput
from engine.methods.supervised import Supervised
from engine.scoring.metrics import classification_metrics
from engine.training.loop import Cancelled, NonFiniteLossError, run_training

torch.set_num_threads(1)  # tiny tensors; the shared 2-core box punishes oversubscription
TINY = DataConfig(labeled_batch=4, unlabeled_ratio=2.0)


def tiny_data(task: str = "multiclass", n: int = 48, size: int = 16, seed: int = 0) -> ArrayData:
    """Class-dependent brightness so a few steps can learn something; half the pool unlabeled."""
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, 3, n)
    images = np.clip(rng.normal(60 + 60 * classes[:, None, None], 20, (n, size, size)), 0, 255).astype(np.uint8)
    unlabeled = np.arange(n) % 2 == 1
    val = np.clip(rng.normal(60 + 60 * (np.arange(12) % 3)[:, None, None], 20, (12, size, size)), 0, 255)
    if task == "multiclass":
        labels = np.where(unlabeled, -1, classes).astype(np.int64)
        return ArrayData(images, labels, ("a", "b", "c"), val_images=val.astype(np.uint8),
                         val_labels=np.arange(12) % 3)
    multi = np.eye(3, dtype=np.float32)[classes]
    multi[:, 2] = (classes > 0)  # a second positive label on some images
    val_multi = np.eye(3, dtype=np.float32)[np.arange(12) % 3]
    val_multi[:, 2] = (np.arange(12) % 3) > 0
    return ArrayData(images, multi, ("a", "b", "c"), task="multilabel", labeled_mask=~unlabeled,
                     val_images=val.astype(np.uint8), val_labels=val_multi)


def tiny_cfg(method: str, **kw) -> TrainConfig:
    params = {"queue_size": 16} if method == "s2mts2" else {}
    base = {"epochs": 2, "patience": None, "data": TINY, "eval_batch_size": 64, "method_params": params}
    return TrainConfig(method=method, **{**base, **kw})


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
@pytest.mark.parametrize("method", [m for m in METHODS.names() if "multiclass" in METHODS[m].tasks])
def test_every_method_trains_both_tasks(method: str, task: str) -> None:
    result = run_training(tiny_cfg(method), tiny_data(task))
    assert result.steps_run == result.planned_steps == 2 * result.steps_per_epoch
    role_metrics = result.best_metrics[result.selected_role]
    assert 0.0 <= role_metrics["auc"] <= 1.0 and len(result.history) == 2


def test_checkpoint_round_trip_and_exact_resume(tmp_path: Path) -> None:
    data, cfg = tiny_data(), tiny_cfg("src_mt")
    straight = run_training(cfg, data, checkpoint_dir=tmp_path / "a")

    class StopAfterFirstEpoch:
        def on_epoch_end(self, info: dict) -> None:
            raise Cancelled("user pressed stop")

    with pytest.raises(Cancelled):
        run_training(cfg, data, callbacks=[StopAfterFirstEpoch()], checkpoint_dir=tmp_path / "b")
    ckpt = load_checkpoint(tmp_path / "b" / "last.pt")
    assert ckpt["step"] == straight.steps_per_epoch and ckpt["class_names"] == ["a", "b", "c"]
    assert TrainConfig.from_dict(ckpt["config"]) == cfg
    assert ckpt["teacher"] is not None and ckpt["optimizer"]["state"]
    resumed = run_training(cfg, data, checkpoint_dir=tmp_path / "b", resume=tmp_path / "b" / "last.pt")
    assert resumed.steps_run == straight.steps_run
    final_a, final_b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    for key, value in final_a["student"].items():
        assert torch.allclose(value.float(), final_b["student"][key].float(), atol=1e-5), key


def test_non_finite_loss_raises_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self, batch):
        return StepOutput(torch.tensor(float("nan"), requires_grad=True), {"loss_sup": float("nan")})

    monkeypatch.setattr(Supervised, "train_step", broken)
    with pytest.raises(NonFiniteLossError, match="non-finite loss .* step 0"):
        run_training(tiny_cfg("supervised"), tiny_data())


def test_budget_fixes_plan_and_completes_schedule() -> None:
    cfg = tiny_cfg("mean_teacher", epochs=None, budget_minutes=0.08)
    events: list[dict] = []
    result = run_training(cfg, tiny_data(), callbacks=[type("C", (), {"on_step": lambda s, i: events.append(i)})()])
    assert result.planned_steps >= 20 and result.steps_run in (result.planned_steps, events[-1]["step"])
    assert all(e["planned_steps"] == result.planned_steps for e in events[20:])
    assert result.train_seconds < 30  # 4.8 s budget; generous for a loaded shared CI box


def test_holdout_when_no_val_and_infer_from_checkpoint(tmp_path: Path) -> None:
    data = tiny_data()
    data = ArrayData(data.images, data.labels, data.class_names, groups=np.arange(48) // 2)
    result = run_training(tiny_cfg("mean_teacher"), data, checkpoint_dir=tmp_path)
    preds = infer(result.best_checkpoint, data.images[:5], device="cpu")
    assert preds.student_probs.shape == (5, 3) and preds.teacher_probs.shape == (5, 3)
    assert preds.student_features.dtype == np.float32 and preds.student_features.shape[0] == 5
    assert np.allclose(preds.student_probs.sum(1), 1.0, atol=1e-5)
    import engine.inference.infer as infer_module  # issue 13: a long analysis reports per chunk, same answer

    seen: list[tuple[int, int]] = []
    infer_module.PROGRESS_CHUNK, chunk = 2, infer_module.PROGRESS_CHUNK
    try:
        chunked = infer(result.best_checkpoint, data.images[:5], device="cpu", on_progress=lambda d, t: seen.append((d, t)))
    finally:
        infer_module.PROGRESS_CHUNK = chunk
    assert seen == [(2, 5), (4, 5), (5, 5)]
    np.testing.assert_allclose(chunked.teacher_probs, preds.teacher_probs, atol=1e-6)
    np.testing.assert_allclose(chunked.student_features, preds.student_features, atol=1e-5)
    fast = infer(result.best_checkpoint, data.images[:5], device="cpu", for_analysis=True)   # bf16 where native
    np.testing.assert_allclose(fast.teacher_probs, preds.teacher_probs, atol=0.03)
    assert fast.teacher_probs.dtype == np.float32 and np.allclose(fast.teacher_probs.sum(1), 1.0, atol=1e-3)


def test_analysis_precision_is_bf16_only_on_a_cpu_that_has_it(monkeypatch) -> None:
    import torch

    from engine.core.device import analysis_dtype

    cpu = torch.device("cpu")
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    assert analysis_dtype(cpu, amp=True) is torch.bfloat16
    monkeypatch.setenv("MEDSSL_ANALYSIS_FP32", "1")
    assert analysis_dtype(cpu, amp=True) is None
    monkeypatch.delenv("MEDSSL_ANALYSIS_FP32")
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    assert analysis_dtype(cpu, amp=True) is None           # emulated bf16 would be slower than fp32


def shared_data() -> Path:
    env = os.environ.get("MEDSSL_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


def test_two_epochs_on_300_real_chest_images() -> None:
    folder = shared_data() / "chest_xray_pneumonia_64"
    if not (folder / "train.npz").exists():
        pytest.skip(f"real chest X-ray data not found at {folder} (set MEDSSL_SHARED_DATA)")
    train, test = np.load(folder / "train.npz"), np.load(folder / "test.npz")
    idx = np.random.default_rng(0).choice(len(train["labels"]), 300, replace=False)
    labels = train["labels"][idx].astype(np.int64)
    labeled = stratified_subset(labels, 0.5, seed=0)
    partial = np.full_like(labels, -1)
    partial[labeled] = labels[labeled]  # half labeled, half in the unlabeled pool
    data = ArrayData(train["images"][idx], partial, ("normal", "pneumonia"), groups=train["groups"][idx])
    cfg = TrainConfig(method="src_mt", epochs=2, patience=None, data=DataConfig(labeled_batch=8))
    result = run_training(cfg, data, checkpoint_dir=None)
    from engine.loaders.datasets import to_uint8_tensor
    from engine.loaders.transforms import ViewMaker
    from engine.models import create_model
    from engine.scoring.predict import predict_tensor

    model = create_model("compact_cnn", 2, 1)
    model.load_state_dict(result.best_state[result.selected_role])
    probs, _ = predict_tensor(model, to_uint8_tensor(test["images"]), ViewMaker(cfg.data.aug, 0.5, 0.25),
                              "multiclass")
    auc = classification_metrics(probs, test["labels"].astype(np.int64), "multiclass")["auc"]
    assert auc > 0.75, f"test AUC {auc:.3f} of the val-selected {result.selected_role}"
