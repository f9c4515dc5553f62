"""Label page key press while the worker trains (a script, not a test): is "every core, lower priority" safe?

    python -m engine.bench.label_latency [--presses 40] [--images 1500] [--out docs/results/label_latency]

Issue 16 §0: training used one thread of two "to keep a core for the app", halving every budget. This
measures, in one run on the same store, the Label page's save-to-next (one number key = one button click,
streamlit AppTest server time, this process at normal priority) and the worker's training throughput
(optimizer steps per second, from its job progress) under:

  idle              no worker (the baseline);
  old_default       worker at normal priority, training on all cores but one;
  all_cores_nice10  worker at niceness +10 on every core (the new default);
  all_cores_nice0   worker at normal priority on every core (what os.nice buys).

Each worker condition trains the same src_mt job (fresh job, same data) on a slice of the real chest X-rays.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.bench import write_json
from engine.bench.report import bench_header

REPO_ROOT = Path(__file__).resolve().parents[2]
CONDITIONS = {"idle": None, "old_default": {"nice": 0, "threads": "cores-1"},
              "all_cores_nice10": {"nice": 10, "threads": None}, "all_cores_nice0": {"nice": 0, "threads": None}}


def _prepare(home: Path, n_images: int, labeled: int) -> None:
    from engine.cli import main as cli
    from engine.data.demo import shared_data_dir

    folder = shared_data_dir() / "chest_xray_pneumonia_64"
    bundle = np.load(folder / "train.npz")
    pick = np.random.default_rng(0).choice(len(bundle["labels"]), n_images, replace=False)
    labels = bundle["labels"][pick].astype(np.int64)
    labels[labeled:] = -1
    np.savez(home / "train.npz", images=bundle["images"][pick], labels=labels, groups=bundle["groups"][pick])
    assert cli(["import", "--project", "bench", "--task", "multiclass", "--classes", "normal,pneumonia",
                "--source", str(home / "train.npz")]) == 0
    assert cli(["import", "--project", "bench", "--source", str(folder / "val.npz")]) == 0


def _label_page():
    from streamlit.testing.v1 import AppTest

    def page() -> None:
        from app import state
        from app.resources import get_store
        from app.views import label
        from db.projects import list_projects

        with get_store().sessions.begin() as session:
            state.put(state.PROJECT, list_projects(session)[0].id)
        state.put(state.ANNOTATOR, "bench")
        label.render()

    return AppTest.from_function(page, default_timeout=120)


def _presses(page, n: int) -> list[float]:
    times = []
    for i in range(n):
        start = time.perf_counter()
        page.button(key=f"class{i % 2}").click().run()
        times.append(time.perf_counter() - start)
    return times


def _job_steps(store, job_id: int) -> tuple[str, float]:
    """(status, steps done) parsed from the job's progress message ('epoch e, step s/n, ...')."""
    from db.models import Job

    with store.sessions.begin() as session:
        job = session.get(Job, job_id)
        status, message = job.status, job.message or ""
    if "step " in message:
        try:
            return status, float(message.split("step ")[1].split("/")[0])
        except ValueError:
            pass
    return status, 0.0


def _run_condition(home: Path, name: str, spec: dict[str, Any] | None, presses: int) -> dict[str, Any]:
    from db.config import StoreConfig
    from db.jobs import enqueue
    from db.store import open_store

    page = _label_page()
    page.run()
    if spec is None:
        times = _presses(page, presses)
        return _summary(name, times, None)
    store = open_store(StoreConfig.from_env(home=home))
    cores = len(os.sched_getaffinity(0))
    threads = max(1, cores - 1) if spec["threads"] == "cores-1" else None
    with store.sessions.begin() as session:
        job_id = enqueue(session, "train", {"method": "src_mt", "epochs": 50, "shadow": False,
                                            "config": {"num_threads": threads} if threads else {}},
                         project_id=1).id
    env = {**os.environ, "MEDSSL_HOME": str(home)}
    worker = subprocess.Popen([sys.executable, "-m", "engine", "worker", "--nice", str(spec["nice"])],
                              cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while _job_steps(store, job_id)[1] < 5 and time.monotonic() < deadline:  # past data loading, training
            time.sleep(1.0)
        _, steps_before = _job_steps(store, job_id)
        start = time.perf_counter()
        times = _presses(page, presses)
        time.sleep(max(0.0, 20.0 - (time.perf_counter() - start)))  # a window long enough to count steps
        _, steps_after = _job_steps(store, job_id)
        window = time.perf_counter() - start
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        from engine.cli import main as cli

        cli(["cancel", "--job", str(job_id)])
        store.dispose()
    return _summary(name, times, (steps_after - steps_before) / window, threads or cores, spec["nice"])


def _summary(name: str, times: list[float], steps_per_s: float | None, threads: int | None = None,
             nice: int | None = None) -> dict[str, Any]:
    ms = [1000.0 * t for t in times]
    return {"condition": name, "presses": len(ms), "median_ms": round(statistics.median(ms), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1), "max_ms": round(max(ms), 1),
            "worker_threads": threads, "worker_nice": nice,
            "train_steps_per_s": None if steps_per_s is None else round(steps_per_s, 3)}


def report(result: dict[str, Any]) -> str:
    lines = ["# Label page key press while the worker trains", "", f"`{result['command']}`  ",
             f"{result['machine']}, {result['cores']} cores, load average at start {result['load_average_start']}",
             "", ("Save-to-next = one number key on the Label page (AppTest server time). Throughput = the worker's "
             "optimizer steps per second over the same window. Ratios against `old_default` in the same run."), "",
             ("| condition | worker threads | worker niceness | median ms | p95 ms | max ms | train steps/s | "
             "throughput vs old default |"), "|---|---|---|---|---|---|---|---|"]
    base = next((r["train_steps_per_s"] for r in result["rows"] if r["condition"] == "old_default"), None)
    for r in result["rows"]:
        ratio = "–" if not base or r["train_steps_per_s"] is None else f"{r['train_steps_per_s'] / base:.2f}×"
        lines.append(f"| {r['condition']} | {r['worker_threads'] or '–'} | "
                     f"{'–' if r['worker_nice'] is None else r['worker_nice']} | {r['median_ms']} | {r['p95_ms']} | "
                     f"{r['max_ms']} | {r['train_steps_per_s'] if r['train_steps_per_s'] is not None else '–'} | "
                     f"{ratio} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=40)
    parser.add_argument("--images", type=int, default=1500)
    parser.add_argument("--labeled", type=int, default=300)
    parser.add_argument("--conditions", default=",".join(CONDITIONS))
    parser.add_argument("--out", type=Path, default=Path("docs/results/label_latency"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        os.environ.update({"MEDSSL_HOME": str(home), "MEDSSL_AUTOSTART_WORKER": "0"})
        os.environ.pop("MEDSSL_DB", None)
        _prepare(home, args.images, args.labeled)
        result = {**bench_header("engine.bench.label_latency", argv), "cores": len(os.sched_getaffinity(0)),
                  "load_average_start": [round(x, 2) for x in os.getloadavg()], "rows": []}
        for name in args.conditions.split(","):
            result["rows"].append(_run_condition(home, name, CONDITIONS[name], args.presses))
            print(result["rows"][-1], flush=True)
        result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "results.json", result)
    (args.out / "results.md").write_text(report(result))
    print(report(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
