"""Train jobs through the real CLI and a real worker process, on a slice of the real chest X-rays."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from db.config import StoreConfig
from db.models import Checkpoint, Job
from db.store import open_store
from engine.cli import main
from tests.conftest import REPO_ROOT, shared_file


def _chest_slice(tmp_path: Path, n: int, labeled: int, seed: int = 0) -> tuple[Path, Path]:
    """A train npz whose first `labeled` images keep labels (the rest -1 = unlabeled) + the real val split."""
    bundle = np.load(shared_file("chest_xray_pneumonia_64/train.npz"))
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(bundle["labels"]), n, replace=False))
    labels = bundle["labels"][pick].astype(np.int64)
    labels[labeled:] = -1
    train = tmp_path / "train.npz"
    np.savez(train, images=bundle["images"][pick], labels=labels, groups=bundle["groups"][pick])
    return train, shared_file("chest_xray_pneumonia_64/val.npz")


def _import(train: Path, val: Path) -> None:
    assert main(["import", "--project", "cx", "--task", "multiclass", "--classes", "normal,pneumonia",
                 "--source", str(train)]) == 0
    assert main(["import", "--project", "cx", "--source", str(val)]) == 0


def test_train_wait_runs_in_process_and_registers_active_checkpoint(tmp_path, capsys) -> None:
    _import(*_chest_slice(tmp_path, 300, 60))
    capsys.readouterr()
    assert main(["train", "--project", "cx", "--method", "mean_teacher", "--epochs", "1", "--wait"]) == 0
    assert "done" in capsys.readouterr().out
    assert main(["jobs", "--project", "cx", "--json"]) == 0
    jobs = json.loads(capsys.readouterr().out)
    assert [(j["kind"], j["status"], j["progress"], j["attempts"]) for j in jobs] == [
        ("train", "done", 1.0, 1), ("analyze", "queued", 0.0, 0)]   # analysis follows every training run
    main(["status", "--project", "cx", "--json"])
    status = json.loads(capsys.readouterr().out)
    active = status["checkpoints"]["active"]
    # issue 16 §4: a semi-supervised job also trains its supervised shadow; the better on val is active
    assert status["checkpoints"]["count"] == 2 and active["method"] in ("mean_teacher", "supervised")
    shadow = active["shadow"]
    assert set(shadow) >= {"checkpoint_id", "metric", "value", "delta", "ci95"} and shadow["metric"] == "auc"
    assert shadow["ci95"][0] <= shadow["delta"] <= shadow["ci95"][1]
    assert shadow["delta"] == pytest.approx(shadow["ssl_value"] - shadow["value"], abs=1e-5)
    assert (active["method"] == "supervised") == (shadow["delta"] < 0)
    assert active["labels_used"] == 60 + status["splits"]["val"]["labeled"]
    assert active["metrics"]["labels"] == {"train": 60, "val": status["splits"]["val"]["labeled"]}
    assert 0.5 < active["metrics"]["val"][active["metrics"]["role"]]["auc"] <= 1.0
    _check_model_export(tmp_path, capsys)


def _check_model_export(tmp_path, capsys) -> None:
    """The exported TorchScript (preprocessing inside) reproduces the engine's own inference."""
    import torch

    from db.config import StoreConfig
    from db.store import open_store
    from engine.data.cache import build_cache
    from engine.inference.infer import infer

    out = tmp_path / "export"
    assert main(["export", "--project", "cx", "--what", "model", "--out", str(out)]) == 0
    card = (out / "MODEL_CARD.md").read_text()
    model = torch.jit.load(str(out / "model.torchscript.pt"))
    store = open_store(StoreConfig.from_env())
    with store.sessions.begin() as s:  # the active one: SSL or its supervised shadow, whichever won on val
        checkpoint = s.scalars(select(Checkpoint).where(Checkpoint.is_active.is_(True))).one()
        path, method = store.config.home / checkpoint.path, checkpoint.method
    assert method in card and "not for clinical diagnosis" in card and "normal, pneumonia" in card
    images = np.asarray(build_cache(store, 1, 64, 1).images[:8])
    expected = infer(path, images).teacher_probs
    got = model(torch.from_numpy(images).unsqueeze(1)).detach().numpy()
    assert np.allclose(got, expected, atol=1e-4)
    with pytest.raises(Exception, match="resize to 64x64 first"):  # another size is refused, not misread
        model(torch.zeros((1, 1, 128, 128), dtype=torch.uint8))
    store.dispose()
    assert main(["export", "--project", "cx", "--what", "predictions", "--out", str(tmp_path / "p.csv")]) == 1
    assert "analyze" in capsys.readouterr().err                 # not analyzed yet: says what to do


def _worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "engine", "worker"], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}")


def test_sigkilled_worker_job_resumes_from_last_epoch_checkpoint(tmp_path, _isolated_home) -> None:
    _import(*_chest_slice(tmp_path, 300, 60))
    assert main(["train", "--project", "cx", "--method", "supervised", "--epochs", "4"]) == 0
    store = open_store(StoreConfig.from_env(home=_isolated_home))
    env = {**os.environ, "MEDSSL_HOME": str(_isolated_home), "MEDSSL_STALE_SECONDS": "3"}
    first = _worker(env)
    last_pt = _isolated_home / "checkpoints" / "p1" / "job1" / "last.pt"
    try:
        _wait_for(last_pt.exists, 120, "the first epoch checkpoint")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    import torch

    killed_at_step = torch.load(last_pt, weights_only=False)["step"]
    with store.sessions.begin() as s:
        assert s.get(Job, 1).status == "running"        # the dead worker left it running
    second = _worker(env)
    try:
        def finished():
            with store.sessions.begin() as s:
                job = s.get(Job, 1, populate_existing=True)
                return job if job.status in ("done", "failed") else None
        job = _wait_for(finished, 150, "the resumed job to finish")
    finally:
        # The worker may be inside the follow-up analyze job (UMAP's first numba compile in a fresh process),
        # which checks for a stop only between stages: under load that took > 20 s, so allow for it.
        second.send_signal(signal.SIGTERM)
        second.wait(120)
    assert job.status == "done", job.error
    assert job.attempts == 2
    final = torch.load(last_pt, weights_only=False)
    assert killed_at_step > 0 and final["step"] == final["plan"]["total_steps"]
    assert final["step"] / final["plan"]["steps_per_epoch"] == pytest.approx(4.0)
    epochs = [h["epoch"] for h in final["progress"]["history"]]
    assert epochs == sorted(set(epochs)) and len(epochs) == 4     # no epoch repeated or skipped
    with store.sessions.begin() as s:
        assert len(s.scalars(select(Checkpoint)).all()) == 1
    store.dispose()


def test_checkpoint_registered_when_val_auc_is_undefined(tmp_path, capsys, _isolated_home) -> None:
    """Regression: with a one-class val split no epoch 'improves', so there is no best.pt; the job must
    register last.pt instead of a missing file (the analysis job then failed with ENOENT)."""
    bundle = np.load(shared_file("chest_xray_pneumonia_64/val.npz"))
    normal = np.flatnonzero(bundle["labels"] == 0)
    np.savez(tmp_path / "val.npz", images=bundle["images"][normal[:6]], labels=bundle["labels"][normal[:6]])
    train, _ = _chest_slice(tmp_path, 60, 20)
    _import(train, tmp_path / "val.npz")
    assert main(["train", "--project", "cx", "--method", "supervised", "--epochs", "1", "--wait"]) == 0
    store = open_store(StoreConfig.from_env(home=_isolated_home))
    with store.sessions.begin() as s:
        checkpoint = s.scalars(select(Checkpoint)).one()
        assert (store.config.home / checkpoint.path).exists()
    store.dispose()
    assert main(["analyze", "--project", "cx", "--wait"]) == 0
