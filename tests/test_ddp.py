"""DDP on CPU: real torchrun runs with 2 gloo processes, the sampler's rank shards, the single-process no-ops."""
from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sqlalchemy import select

from db.config import StoreConfig
from db.models import Checkpoint, Job, Project
from db.store import open_store
from engine.cli import main
from engine.loaders.samplers import TwoStreamSampler
from engine.training import distributed
from tests.conftest import REPO_ROOT

GLOO = torch.distributed.is_available() and torch.distributed.is_gloo_available()
needs_gloo = pytest.mark.skipif(not GLOO, reason="this torch build has no torch.distributed / gloo backend")


def _images(n: int, labeled: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noise, plus a bright disc for class 1: learnable in one epoch; labels after `labeled` are -1."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    yy, xx = np.mgrid[:32, :32]
    images = rng.integers(0, 60, (n, 32, 32)).astype(np.uint8)
    images[labels == 1] += (((yy - 16) ** 2 + (xx - 16) ** 2) < 64).astype(np.uint8) * 150
    labels[labeled:] = -1
    return images, labels


def _project(tmp_path: Path, epochs: int, extra: list[str] = ()) -> None:
    """A 192-image project (48 labeled) + 16 labeled val images, and one queued train job (id 1)."""
    for name, (n, labeled, seed) in {"train": (192, 48, 0), "val": (16, 16, 1)}.items():
        images, labels = _images(n, labeled, seed)
        np.savez(tmp_path / f"{name}.npz", images=images, labels=labels)
    assert main(["import", "--project", "p", "--task", "multiclass", "--classes", "a,b",
                 "--source", str(tmp_path / "train.npz")]) == 0
    assert main(["import", "--project", "p", "--source", str(tmp_path / "val.npz")]) == 0
    assert main(["train", "--project", "p", "--method", "src_mt", "--epochs", str(epochs), *extra]) == 0


def _run(command: list[str], home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MEDSSL_HOME": str(home), "MEDSSL_WARM_UMAP": "0", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, *command], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=150, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _rank_logs(output: str) -> dict[int, dict[str, str]]:
    """Each rank's shard line and end-of-run line (engine.training.loop logs them under DDP)."""
    ranks: dict[int, dict[str, str]] = {}
    for rank, kind, rest in re.findall(r"ddp rank (\d)/2 (shard|done): (.*)", output):
        ranks.setdefault(int(rank), {})[kind] = rest
    return ranks


def _assert_both_ranks_trained(output: str) -> None:
    ranks = _rank_logs(output)
    assert sorted(ranks) == [0, 1], output[-3000:]
    for lines in ranks.values():
        # 192 images / (16 labeled + 32 unlabeled) / 2 ranks = 2 steps per rank per epoch
        assert lines["shard"].startswith("32 labeled + 64 unlabeled indices per epoch (2 steps per epoch)")
        assert int(re.search(r"trained on (\d+) labeled", lines["done"]).group(1)) > 0
    digests = {re.search(r"student sha1 (\w+)", lines["done"]).group(1) for lines in ranks.values()}
    assert len(digests) == 1, ranks          # DDP kept the two replicas identical


def _job_and_checkpoints(home: Path) -> tuple[Job, list[Checkpoint], Path]:
    store = open_store(StoreConfig.from_env(home=home))
    with store.sessions.begin() as s:
        job = s.get(Job, 1)
        checkpoints = s.scalars(select(Checkpoint)).all()
        kinds = sorted(s.scalars(select(Job.kind)))
        s.expunge_all()
    store.dispose()
    assert kinds == ["analyze", "train"]       # rank 0 alone enqueued the follow-up analysis
    return job, checkpoints, home


@needs_gloo
def test_torchrun_two_gloo_ranks_train_one_epoch(tmp_path: Path, _isolated_home: Path) -> None:
    _project(tmp_path, epochs=1)
    result = _run(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                   "-m", "engine", "run-job", "1", "-v"], _isolated_home)
    output = result.stdout + result.stderr
    _assert_both_ranks_trained(output)
    assert "job 1 done" in output
    job, checkpoints, home = _job_and_checkpoints(_isolated_home)
    assert job.status == "done" and job.attempts == 1 and job.progress == 1.0
    # issue 16 §4: the SSL job's supervised shadow trained under torchrun too (both ranks), then the SSL run
    ssl = [c for c in checkpoints if c.method != "supervised"]
    assert len(checkpoints) == 2 and len(ssl) == 1 and all((home / c.path).exists() for c in checkpoints)
    saved = torch.load(home / ssl[0].path, weights_only=False)
    assert saved["plan"] == {"total_steps": 2, "steps_per_epoch": 2}       # one pool pass across both ranks


@needs_gloo
def test_worker_launches_torchrun_for_nproc_job_and_resumes(tmp_path: Path, _isolated_home: Path, capfd,
                                                            caplog) -> None:
    """A 2-epoch job whose first epoch ran single-process (then stopped): the worker starts 2 ranks, which
    resume at epoch 1 (2 steps per epoch on 2 ranks instead of 4 on one) and finish epoch 2."""
    from engine.jobs.snapshot import load_snapshot
    from engine.jobs.train_job import build_config
    from engine.loaders.datasets import ArrayData
    from engine.training.loop import Cancelled, run_training
    from engine.worker import Worker

    _project(tmp_path, epochs=2, extra=["--nproc", "2"])
    store = open_store(StoreConfig.from_env(home=_isolated_home))
    with store.sessions.begin() as s:
        project, params = s.get(Project, 1), dict(s.get(Job, 1).params)
        s.expunge(project)
    assert params["nproc"] == 2
    snap = load_snapshot(store, project)
    data = ArrayData(images=snap.images, labels=snap.labels, class_names=("a", "b"), task="multiclass",
                     labeled_mask=snap.labeled_mask, groups=snap.groups, val_images=snap.val_images,
                     val_labels=snap.val_labels)
    store.dispose()

    class StopAfterFirstEpoch:
        def on_epoch_end(self, info: dict) -> None:
            raise Cancelled("stop")

    run_dir = _isolated_home / "checkpoints" / "p1" / "job1"
    with pytest.raises(Cancelled):
        run_training(build_config(params, "multiclass"), data, callbacks=[StopAfterFirstEpoch()],
                     checkpoint_dir=run_dir)
    first = torch.load(run_dir / "last.pt", weights_only=False)
    assert (first["step"], first["plan"]["steps_per_epoch"]) == (4, 4)

    caplog.set_level(logging.INFO)             # the launched ranks log as verbosely as their worker
    store = open_store(StoreConfig.from_env(home=_isolated_home))
    worker = Worker(store)
    try:
        assert worker.run_once(job_id=1)       # claims the job and runs it under torchrun
    finally:
        worker.close()
        store.dispose()
    captured = capfd.readouterr()
    _assert_both_ranks_trained(captured.out + captured.err)
    job, checkpoints, home = _job_and_checkpoints(_isolated_home)
    assert job.status == "done", job.error
    assert sorted(c.method for c in checkpoints) == ["src_mt", "supervised"]  # + its shadow (issue 16)
    assert all((home / c.path).exists() for c in checkpoints)
    final = torch.load(run_dir / "last.pt", weights_only=False)
    assert final["plan"] == {"total_steps": 4, "steps_per_epoch": 2} and final["step"] == 4
    assert [h["epoch"] for h in final["progress"]["history"]] == [1.0, 2.0]   # epoch 1 not repeated


def test_rank_shards_are_disjoint_and_make_one_pass_together() -> None:
    labeled, unlabeled = np.arange(0, 40), np.arange(40, 160)
    single = TwoStreamSampler(labeled, unlabeled, 4, 8, seed=3)
    ranks = [TwoStreamSampler(labeled, unlabeled, 4, 8, seed=3, rank=r, world_size=2) for r in range(2)]
    spe = ranks[0].steps_per_epoch("pool")
    assert spe == 7 and single.steps_per_epoch("pool") == 14 and ranks[0].steps_per_epoch("labeled") == 5
    for stream in (0, 1):
        shards = [np.concatenate([s.batch(step)[stream] for step in range(5)]) for s in ranks]
        assert not set(shards[0]) & set(shards[1])                 # disjoint within one pass
        together = np.concatenate([s.batch(step)[stream] for step in range(5) for s in ranks])
        assert np.array_equal(together, np.concatenate([single.batch(step)[stream] for step in range(10)]))
    with pytest.raises(ValueError):
        TwoStreamSampler(labeled, unlabeled, 4, 8, seed=3, rank=2, world_size=2)


def test_distributed_helpers_are_no_ops_in_one_process() -> None:
    assert not distributed.is_distributed() and distributed.is_main()
    assert (distributed.rank(), distributed.world_size(), distributed.local_world_size()) == (0, 1, 1)
    assert distributed.broadcast_int(7) == 7 and distributed.any_true(True)
    assert distributed.run_on_main(lambda: "x") == "x" and distributed.decide_on_main(lambda: 2) == 2
    distributed.barrier()
    assert distributed.backend_for("cpu") == "gloo"
