"""S²MTS² stage 1 trained once and reused until the pool grows by 25 % (issue 16 §3)."""
import numpy as np
import torch

from engine.core.config import AugConfig, TrainConfig
from engine.jobs.stage1_cache import stage1_params
from engine.loaders.datasets import ArrayData
from engine.loaders.transforms import ViewMaker
from engine.methods import METHODS
from engine.models import create_model
from engine.training.loop import run_training


def _data() -> ArrayData:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (48, 16, 16), dtype=np.uint8)
    labels = np.where(np.arange(48) < 12, np.arange(48) % 2, -1)
    return ArrayData(images, labels, ("a", "b"), val_images=images[:8], val_labels=np.arange(8) % 2)


def test_stage1_is_saved_after_stage1_then_loaded_and_skipped(tmp_path) -> None:
    cache = tmp_path / "stage1.pt"
    cfg = TrainConfig(method="s2mts2", epochs=4, patience=None, num_threads=1, eval_batch_size=64,
                      method_params={"queue_size": 16, "stage1_save": str(cache)})
    run_training(cfg, _data())
    assert cache.exists()
    saved = torch.load(cache, weights_only=True)
    method = METHODS["s2mts2"](create_model("compact_cnn", 2, 1), "multiclass", 2, ViewMaker(AugConfig(), 0.5, 0.25),
                               {"queue_size": 16, "stage1_load": str(cache)})
    assert method.stage1_reused and method.pretrain_fraction == 0.0
    assert all(torch.equal(v, saved["student"][k]) for k, v in method.student.state_dict().items())
    assert [name for name, _ in method.phase_fractions()] == ["warm_start", "consistency"]
    reuse = TrainConfig(method="s2mts2", epochs=4, patience=None, num_threads=1, eval_batch_size=64,
                        method_params={"queue_size": 16, "stage1_load": str(cache)})
    result = run_training(reuse, _data())
    assert result.steps_run == result.planned_steps > 0


def test_reuse_decision_follows_pool_growth_and_survives_a_resume(tmp_path) -> None:
    folder, cfg = tmp_path / "cache", TrainConfig(method="s2mts2")
    params, reused = stage1_params(folder, tmp_path / "job1", cfg, 1000)
    assert not reused and "stage1_save" in params and "stage1_load" not in params
    from pathlib import Path

    Path(params["stage1_save"]).write_bytes(b"stage 1")  # what the run writes after stage 1
    assert stage1_params(folder, tmp_path / "job1", cfg, 5000) == (params, False)  # resumed: same decision
    params2, reused2 = stage1_params(folder, tmp_path / "job2", cfg, 1250)  # +25 %: still reused
    assert reused2 and params2["stage1_load"] == params["stage1_save"]
    params3, reused3 = stage1_params(folder, tmp_path / "job3", cfg, 1300)  # +30 %: trained again
    assert not reused3 and not Path(params["stage1_save"]).exists()
    other = TrainConfig(method="s2mts2", seed=1)
    assert stage1_params(folder, tmp_path / "job4", other, 1000)[0]["stage1_save"] != params3["stage1_save"]


def test_second_s2mts2_job_on_the_same_pool_reuses_stage1(tmp_path, capsys) -> None:
    import json

    from engine.cli import main
    from tests.test_train_job import _chest_slice, _import

    _import(*_chest_slice(tmp_path, 160, 40))
    for _ in range(2):
        assert main(["train", "--project", "cx", "--method", "s2mts2", "--epochs", "1", "--no-shadow",
                     "--wait"]) == 0
    capsys.readouterr()
    assert main(["models", "--project", "cx", "--json"]) == 0
    models = json.loads(capsys.readouterr().out)
    assert [m["metrics"]["stage1_reused"] for m in models] == [False, True]
