"""Analysis speed (a script, not a test): the `analyze` job over >= 10,000 real chest X-rays.

    python -m engine.bench.analysis_speed [--out bench_out/analysis_speed.json]

Imports the 64 px and 128 px chest sets (all splits; the 128 px images are different pixel arrays, so
both count) into a fresh store, trains a 1-epoch supervised compact_cnn checkpoint on 5 % labels (the
speed of analysis does not depend on how good the model is), warms UMAP as the worker does at start,
then runs the analyze job in-process and reports each stage's time from the job's own timings.
Baseline in the same run: the same UMAP call in this process before warm-up would include numba
compilation; we report the warm-up's duration for that comparison.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from db.config import StoreConfig
from db.jobs import enqueue
from db.models import Job, Project
from db.store import open_store
from engine.analysis.projection import warm_up
from engine.bench.report import bench_header, write_result
from engine.data.importer import ImportRequest, run_import
from engine.worker import Worker

SETS = ("chest_xray_pneumonia_64", "chest_xray_pneumonia_128")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2].parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=Path("bench_out/analysis_speed.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(StoreConfig.from_env(home=tmp))
        for name in SETS:
            for split in ("train", "val", "test"):
                run_import(store, ImportRequest(project="bench", source=args.data / name / f"{split}.npz",
                                                task="multiclass", split="train", unlabeled=split != "val",
                                                image_size=64, annotator="bench"))
        with store.sessions.begin() as s:
            project_id = s.scalar(select(Project.id))
            train_id = enqueue(s, "train", {"method": "supervised", "epochs": 1}, project_id=project_id).id
        import os

        os.environ["MEDSSL_WARM_UMAP"] = "0"
        worker = Worker(store)
        t0 = time.perf_counter()
        warm_up()
        warm_s = time.perf_counter() - t0
        worker.run_once(job_id=train_id)
        with store.sessions.begin() as s:
            analyze = s.scalars(select(Job).where(Job.kind == "analyze")).one()
            n_images = len(s.scalars(select(Project)).one().images)
        t0 = time.perf_counter()
        worker.run_once(job_id=analyze.id)
        wall = time.perf_counter() - t0
        worker.close()
        with store.sessions.begin() as s:
            job = s.get(Job, analyze.id)
            status, timings, message = job.status, job.metrics.get("timings"), job.message
        store.dispose()
    result = {**bench_header("engine.bench.analysis_speed", argv), "images": n_images, "status": status,
              "message": message, "stage_seconds": timings, "job_wall_seconds": round(wall, 2),
              "umap_warm_up_seconds": round(warm_s, 2)}
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
