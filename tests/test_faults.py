"""Faults lose nothing (issue 12): kills, SIGTERM requeues, retries, full disks, vanished databases, temp files."""
from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

import db.jobs as db_jobs
from db.config import StoreConfig
from db.jobs import claim_next, enqueue, register_worker, requeue, requeue_stale
from db.models import Checkpoint, Image, Job, Worker, utcnow
from db.store import open_store
from engine.cli import main
from engine.jobs.housekeeping import clean_orphan_images, clean_temp_files
from tests.conftest import REPO_ROOT
from tests.test_queue import handlers  # noqa: F401 - fixture
from tests.test_train_job import _chest_slice, _import


def test_sigterm_requeue_is_not_an_attempt_and_retry_resumes_a_failed_job(store, capsys) -> None:
    from datetime import timedelta

    with store.sessions.begin() as s:
        worker_id = register_worker(s).id
        job_id = enqueue(s, "noop", {}, max_attempts=1).id
        claim_next(s, worker_id)
        requeue(s, job_id, "requeued: worker stopped")
        assert s.get(Job, job_id, populate_existing=True).attempts == 0  # a graceful stop is not a death
        claim_next(s, worker_id)
        s.execute(update(Worker).values(heartbeat_at=utcnow() - timedelta(minutes=10)))
        requeue_stale(s)
        job = s.get(Job, job_id, populate_existing=True)
        assert job.status == "failed" and f"retry --job {job_id}" in job.message
    db = ["--db", store.config.db_url]
    assert main(["retry", "--job", str(job_id), *db]) == 0
    with store.sessions.begin() as s:
        job = s.get(Job, job_id)
        assert (job.status, job.attempts, job.error) == ("queued", 0, None)
    assert main(["retry", "--job", str(job_id), *db]) == 2      # queued: nothing to retry
    assert main(["retry", "--job", "999", *db]) == 2
    assert "only failed or cancelled" in capsys.readouterr().err


def test_retried_train_job_registers_its_checkpoint_once(tmp_path: Path, _isolated_home: Path) -> None:
    """Killed after registering its checkpoint but before finishing: the retry adds no second checkpoint
    and no second analysis job."""
    _import(*_chest_slice(tmp_path, 120, 40))
    assert main(["train", "--project", "cx", "--method", "supervised", "--epochs", "1", "--wait"]) == 0
    store = open_store(StoreConfig.from_env())
    with store.sessions.begin() as s:
        s.execute(update(Job).where(Job.id == 1).values(status="queued", finished_at=None))  # as if killed
    from engine.worker import Worker

    worker = Worker(store)
    try:
        assert worker.run_once(job_id=1)
    finally:
        worker.close()
    with store.sessions.begin() as s:
        assert s.get(Job, 1).status == "done"
        assert len(s.scalars(select(Checkpoint)).all()) == 1
        assert len(s.scalars(select(Job).where(Job.kind == "analyze")).all()) == 1
    store.dispose()


def test_resumed_run_keeps_the_pre_crash_curve() -> None:
    from engine.core.config import TrainConfig
    from engine.jobs.train_job import _Progress
    from engine.loaders.datasets import ArrayData
    from engine.training.loop import Cancelled, run_training

    rng = np.random.default_rng(0)
    data = ArrayData(rng.integers(0, 255, (40, 16, 16), dtype=np.uint8), np.tile([0, 1], 20), ("a", "b"),
                     val_images=rng.integers(0, 255, (10, 16, 16), dtype=np.uint8), val_labels=np.tile([0, 1], 5))
    cfg = TrainConfig(method="supervised", epochs=3, patience=None, num_threads=1)

    class StopAfterFirstEpoch:
        def on_epoch_end(self, info: dict) -> None:
            raise Cancelled("killed")

    import tempfile

    with tempfile.TemporaryDirectory() as run_dir:
        with pytest.raises(Cancelled):
            run_training(cfg, data, callbacks=[StopAfterFirstEpoch()], checkpoint_dir=run_dir)
        progress = _Progress(ctx=None)
        progress.ctx = type("Quiet", (), {"report": lambda self, **kw: None})()
        run_training(cfg, data, callbacks=[progress], checkpoint_dir=run_dir, resume=Path(run_dir) / "last.pt")
    assert [round(c["epoch"]) for c in progress.curve] == [1, 2, 3]  # epoch 1 came back from the checkpoint
    assert all(c["val_score"] is not None for c in progress.curve)


def _serve_once(store) -> None:
    """A real worker over the queue until it is empty, then closed."""
    from engine.worker import Worker

    worker = Worker(store)
    try:
        worker.serve(once=True)
    finally:
        worker.close()


def test_full_disk_fails_the_job_with_its_reason_and_the_worker_keeps_serving(store, handlers,  # noqa: F811
                                                                               monkeypatch) -> None:

    def full(ctx):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/checkpoints/p1/job1/last.pt")

    handlers["full"], handlers["ok"] = full, (lambda ctx: "fine")
    with store.sessions.begin() as s:
        first, second = enqueue(s, "full", {}).id, enqueue(s, "ok", {}).id
    real_finish, calls = db_jobs.finish, []

    def flaky_finish(session, job_id, *args, **kwargs):  # the database cannot be written once, then can
        calls.append(job_id)
        if len(calls) == 1:
            raise OperationalError("UPDATE job", {}, Exception("database or disk is full"))
        return real_finish(session, job_id, *args, **kwargs)

    monkeypatch.setattr("engine.worker.finish", flaky_finish)
    _serve_once(store)
    with store.sessions.begin() as s:
        failed, done = s.get(Job, first), s.get(Job, second)
        assert failed.status == "failed" and "disk full" in failed.message and "retry" in failed.message
        assert done.status == "done"


def _age(path: Path, seconds: float = 7200) -> Path:
    old = time.time() - seconds
    os.utime(path, (old, old))
    return path


def test_abandoned_temp_files_and_orphan_images_are_cleaned(store, tmp_path: Path) -> None:
    home = store.config.home
    run = home / "checkpoints" / "p1" / "job1"
    run.mkdir(parents=True)
    stale = [run / ".last.pt.k2j3.tmp", home / "cache" / "p1_64.npy.tmp4242", home / "images" / ".3.png.ab12.tmp"]
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        _age(path)
    fresh = run / ".best.pt.zz.tmp"
    fresh.write_bytes(b"being written right now")
    keep = run / "last.pt"
    keep.write_bytes(b"checkpoint")
    _age(keep)
    with store.sessions.begin() as s:
        from db.models import Project

        project = Project(name="p", task="multiclass", classes=["a", "b"], image_size=16)
        s.add(project)
        s.flush()
        image = Image(project_id=project.id, stored_path="", sha256="0" * 64, width=4, height=4, channels=1,
                      dtype="uint8", split="train", source_name="x", meta={}, label_status="unlabeled")
        s.add(image)
        s.flush()
        image_id = image.id
    folder = home / "images" / "p1"
    folder.mkdir(parents=True, exist_ok=True)
    kept_image, orphan = folder / f"{image_id}.png", folder / f"{image_id + 100}.png"
    for path in (kept_image, orphan):
        path.write_bytes(b"png")
        _age(path)
    removed = clean_temp_files(home) + clean_orphan_images(store)
    assert sorted(removed) == sorted([*stale, orphan])
    assert fresh.exists() and keep.exists() and kept_image.exists()


def test_worker_stops_when_its_database_file_vanishes(tmp_path: Path, _isolated_home: Path) -> None:
    open_store(StoreConfig.from_env()).dispose()
    database = _isolated_home / "medssl.db"
    env = {**os.environ, "MEDSSL_HOME": str(_isolated_home)}
    worker = subprocess.Popen([sys.executable, "-m", "engine", "worker"], cwd=REPO_ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(3)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        _, err = worker.communicate(timeout=30)
    finally:
        worker.kill()
    assert worker.returncode == 1 and "vanished" in err
    assert not database.exists()  # no new empty database took its place


def test_read_commands_never_create_a_database(_isolated_home: Path, capsys) -> None:
    for argv in (["status", "--project", "p"], ["jobs", "--project", "p"], ["models", "--project", "p"],
                 ["export", "--project", "p", "--out", str(_isolated_home.parent / "x.csv")]):
        assert main(argv) == 2
        assert "no database" in capsys.readouterr().err
    assert not (_isolated_home / "medssl.db").exists()


def test_job_messages_show_metrics_with_four_decimals() -> None:
    from engine.jobs.train_job import _fmt

    assert _fmt(0.9876543210123) == "0.9877" and _fmt(None) == "–" and _fmt(float("nan")) == "–"


def _read_only_view(source: Path, target: Path) -> bool:
    """A read-only bind mount of `source` at `target` (root in a container can; elsewhere the test skips)."""
    import shutil

    target.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        return False

    def run(*argv: str) -> bool:
        return subprocess.run(list(argv), check=False, capture_output=True).returncode == 0

    mounted = run("mount", "--bind", str(source), str(target))
    if mounted and not run("mount", "-o", "remount,ro,bind", str(target)):
        run("umount", str(target))
        return False
    return mounted


def test_read_commands_work_on_a_read_only_data_folder(tmp_path: Path, _isolated_home: Path, capsys) -> None:
    from tests.fixtures_images import gradient, write_png

    for i in range(4):
        write_png(tmp_path / "src" / "ab"[i % 2] / f"{i}.png", gradient(16, 16, scale=i + 1))
    env = {**os.environ, "MEDSSL_HOME": str(_isolated_home)}  # in a child: its connections close, WAL folded in
    subprocess.run([sys.executable, "-m", "engine", "import", "--project", "p", "--task", "multiclass", "--source",
                    str(tmp_path / "src")], cwd=REPO_ROOT, env=env, check=True, capture_output=True)
    assert not Path(f"{_isolated_home / 'medssl.db'}-wal").exists()
    view = tmp_path / "readonly"
    if not _read_only_view(_isolated_home, view):
        pytest.skip("cannot make a read-only bind mount here (needs root in a container)")
    try:
        capsys.readouterr()
        home = ["--home", str(view)]
        assert main(["status", "--project", "p", "--json", *home]) == 0
        assert '"images": 4' in capsys.readouterr().out
        assert main(["jobs", "--project", "p", *home]) == 0
        assert main(["export", "--project", "p", "--out", str(tmp_path / "labels.csv"), *home]) == 0
        assert (tmp_path / "labels.csv").read_text().count("\n") == 5
        capsys.readouterr()
        assert main(["train", "--project", "p", *home]) == 1  # a write: one line, no traceback
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err
    finally:
        subprocess.run(["umount", "-l", str(view)], check=False, capture_output=True)  # lazy: sqlite handles linger


def test_a_failed_job_keeps_its_cause_on_the_row_and_its_traceback_in_logs(store, handlers) -> None:  # noqa: F811
    """Issue 13 item 1: the page and the worker log showed only the last line of an error."""

    def deep(ctx):
        def plan():
            raise IndexError("index 6 is out of bounds for axis 0 with size 6")
        plan()

    handlers["deep"] = deep
    with store.sessions.begin() as s:
        job_id = enqueue(s, "deep", {}).id
    _serve_once(store)
    with store.sessions.begin() as s:
        message = s.get(Job, job_id).message
    assert message.startswith("failed: index 6 is out of bounds") and f"logs/job-{job_id}.log" in message
    trace = (store.config.logs_dir / f"job-{job_id}.log").read_text()
    assert "Traceback" in trace and "in plan" in trace
