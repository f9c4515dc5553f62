"""Analysis speed (a script, not a test): the `analyze` job over >= 10,000 real chest X-rays.

    python -m engine.bench.analysis_speed --out docs/results/analysis_speed

Imports the 64 px and 128 px chest sets (all splits; the 128 px images are different pixel arrays, so
both count) into a fresh store, trains a 1-epoch checkpoint of the product's default method (--method;
a teacher-student method's checkpoint is analysed with both models, which doubles the forward passes) on
5 % labels (the speed of analysis does not depend on how good the model is), warms UMAP as the worker does at start,
then runs the analyze job in-process and reports each stage's time from the job's own timings.
Baseline in the same run: the same analyze job the first slice's way, fp32 with BatchNorm kept and
contiguous weights (MEDSSL_ANALYSIS_FP32=1, MEDSSL_FOLD_BN=0, MEDSSL_CHANNELS_LAST=0), before the default
(BatchNorm folded into the convs, channels-last weights on the CPU, bf16 on CPUs with native bf16); the
UMAP warm-up's duration is reported too (numba compilation, paid once per worker).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from db.config import StoreConfig
from db.jobs import enqueue
from db.models import Checkpoint, Job, Project
from db.store import open_store
from engine.analysis.projection import warm_up
from engine.bench.report import bench_header, write_result
from engine.core.checkpoints import load_checkpoint
from engine.data.catalog import default_method
from engine.data.importer import ImportRequest, run_import
from engine.worker import Worker

SETS = ("chest_xray_pneumonia_64", "chest_xray_pneumonia_128")
# flag -> (baseline: the first slice's path, default): bf16 off, BatchNorm kept, contiguous weights
SWITCHES = {"MEDSSL_ANALYSIS_FP32": ("1", "0"), "MEDSSL_FOLD_BN": ("0", "1"), "MEDSSL_CHANNELS_LAST": ("0", "1")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2].parent / "shared" / "data")
    parser.add_argument("--method", default=default_method("classification"),
                        help="method of the analysed checkpoint (default: the Train page's default)")
    parser.add_argument("--out", type=Path, required=True, help="folder for results.json / results.md")
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
            train_id = enqueue(s, "train", {"method": args.method, "epochs": 1}, project_id=project_id).id
        import os

        os.environ["MEDSSL_WARM_UMAP"] = "0"
        worker = Worker(store)
        t0 = time.perf_counter()
        warm_up()
        warm_s = time.perf_counter() - t0
        worker.run_once(job_id=train_id)
        with store.sessions.begin() as s:   # the method's own checkpoint, even where its shadow became active
            checkpoint = s.scalars(select(Checkpoint).where(Checkpoint.method == args.method)
                                   .order_by(Checkpoint.id.desc())).first()
            checkpoint_id, roles = checkpoint.id, _roles(Path(store.config.home) / checkpoint.path)
            n_images = len(s.scalars(select(Project)).one().images)
        runs = {}
        for run_name in ("baseline", "default"):    # the baseline first: bf16, folding and channels-last off
            for flag, (baseline, default) in SWITCHES.items():
                os.environ[flag] = baseline if run_name == "baseline" else default
            with store.sessions.begin() as s:
                job_id = enqueue(s, "analyze", {"checkpoint_id": checkpoint_id}, project_id=project_id).id
            t0 = time.perf_counter()
            worker.run_once(job_id=job_id)
            wall = time.perf_counter() - t0
            with store.sessions.begin() as s:
                job = s.get(Job, job_id)
                runs[run_name] = {"status": job.status, "message": job.message, "job_wall_seconds": round(wall, 2),
                                   "stage_seconds": (job.metrics or {}).get("timings")}
        for flag in SWITCHES:
            os.environ.pop(flag, None)
        worker.close()
        store.dispose()
    result = {**bench_header("engine.bench.analysis_speed", argv), "images": n_images, "method": args.method, "models_analysed": roles, "runs": runs,
              "speedup_vs_baseline": round(runs["baseline"]["job_wall_seconds"] / runs["default"]["job_wall_seconds"], 2),
              "per_10k_images_s": round(runs["default"]["job_wall_seconds"] * 10_000 / n_images, 1),
              "goal_10k_s": 30, "umap_warm_up_seconds": round(warm_s, 2)}
    args.out.mkdir(parents=True, exist_ok=True)
    write_result(args.out / "results.json", result)
    (args.out / "results.md").write_text(markdown(result))
    return 0


def _roles(path: Path) -> list[str]:
    """Which models the checkpoint holds (a teacher-student checkpoint is analysed with both)."""
    payload = load_checkpoint(path)
    return [role for role in ("student", "teacher") if payload.get(role) is not None]


def markdown(r: dict) -> str:
    stages = ("cache_s", "inference_s", "knn_s", "projection_s", "write_s", "total_s")
    lines = [(f"# Analysis of {r['images']:,} images in a warm worker ({r.get('method', 'supervised')} checkpoint: "
             f"{' + '.join(r.get('models_analysed', ['student']))})\n"),
             f"Command: `{r['command']}`  ",
             f"Machine: {r['machine']}\n",
             "| run | " + " | ".join(stages) + " | job wall s |", "|---" * (len(stages) + 2) + "|"]
    for name, run in r["runs"].items():
        timing = run["stage_seconds"] or {}
        label = ("baseline: fp32, BatchNorm kept, contiguous weights" if name == "baseline"
                 else "default: BatchNorm folded, channels-last on CPU, bf16 where the CPU has it")
        lines.append(f"| {label} | " + " | ".join(str(timing.get(k, "–")) for k in stages)
                     + f" | {run['job_wall_seconds']} |")
    met = "met" if r["per_10k_images_s"] < r["goal_10k_s"] else "NOT met"
    lines.append(f"\nSpeed-up over the baseline in the same run: {r['speedup_vs_baseline']}×; scaled to 10,000 images: "
                 f"{r['per_10k_images_s']} s (goal < {r['goal_10k_s']} s: {met}).")
    return "\n".join(lines) + "\n"

if __name__ == "__main__":
    raise SystemExit(main())
