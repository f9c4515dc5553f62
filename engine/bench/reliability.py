"""`python -m engine.bench.reliability`: the fault-and-abuse pass behind docs/RELIABILITY.md, measured.

Three parts, each counted: (1) bad inputs through the real CLI in this process (every one must end with a
reason: a rejection line in the import report or a one-line `error:` with exit 2/1, never a traceback),
with the traced memory peak per input; (2) SIGKILLs of a real worker process at several points of a train
job, then a fresh worker: the job must finish from its checkpoint with no duplicated rows; (3) injected
faults (a full disk in a job, a vanished database): the job/worker must end cleanly and no label is lost.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

from engine.bench import write_json
from engine.bench.reliability_corpus import BAD_ARGS, bad_sources, png, zip_inputs

REPO = Path(__file__).resolve().parents[2]


def _run_cli(argv: list[str]) -> dict[str, Any]:
    """One CLI call in this process: exit code, one-line-ness, traceback, traced memory peak."""
    from engine.cli import main

    out, err = io.StringIO(), io.StringIO()
    tracemalloc.start()
    crashed = False
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as stop:
                code = int(stop.code or 0)
    except Exception:  # noqa: BLE001 - an escaped exception is exactly what this counts
        crashed, code = True, -1
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    text = out.getvalue() + err.getvalue()
    return {"exit": code, "crash": crashed or "Traceback" in text, "peak_mb": round(peak / 2**20, 1),
            "stdout": out.getvalue()[-400:], "stderr": err.getvalue()[-400:]}


def bad_inputs(work: Path) -> list[dict[str, Any]]:
    rows = []
    for i, (name, source) in enumerate(bad_sources(work / "corpus").items()):
        result = _run_cli(["import", "--project", f"r{i}", "--task", "multiclass", "--classes", "a,b",
                           "--source", str(source)])
        reason = "rejected " in result["stdout"] or result["stderr"].strip().startswith("error:") or \
            "not found" in result["stderr"]
        rows.append({"input": f"import {name}", **result, "refused_with_reason": reason and not result["crash"]})
    png(work / "ok" / "a" / "x.png", np.full((16, 16), 7, np.uint8))
    png(work / "ok" / "b" / "y.png", np.full((16, 16), 9, np.uint8))
    assert _run_cli(["import", "--project", "ok", "--task", "multiclass", "--source", str(work / "ok")])["exit"] == 0
    for argv in BAD_ARGS:
        command, rest = argv[0], argv[1:]
        full = [command, *(["--project", "ok"] if command in ("train", "analyze", "status") else []), *rest]
        result = _run_cli(full)
        rows.append({"input": " ".join(argv), **result,
                     "refused_with_reason": result["exit"] in (1, 2) and "Traceback" not in result["stderr"]})
    rows += zip_inputs(work)
    return rows


def _worker(home: Path) -> subprocess.Popen:
    env = {**os.environ, "MEDSSL_HOME": str(home), "MEDSSL_STALE_SECONDS": "3", "MEDSSL_WARM_UMAP": "0"}
    return subprocess.Popen([sys.executable, "-m", "engine", "worker"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _counts(home: Path) -> dict[str, int]:
    from sqlalchemy import func, select

    from db.config import StoreConfig
    from db.models import Checkpoint, Job, Label, Prediction
    from db.store import open_store

    store = open_store(StoreConfig.from_env(home=home))
    with store.sessions.begin() as s:
        counts = {"labels": s.scalar(select(func.count(Label.id))),
                  "checkpoints": s.scalar(select(func.count(Checkpoint.id))),
                  "train_done": s.scalar(select(func.count(Job.id)).where(Job.kind == "train", Job.status == "done")),
                  "analyze_jobs": s.scalar(select(func.count(Job.id)).where(Job.kind == "analyze")),
                  "predictions": s.scalar(select(func.count(Prediction.id)))}
    store.dispose()
    return counts


def _project(home: Path, work: Path) -> None:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 255, (160, 32, 32), dtype=np.uint8)
    labels = np.where(np.arange(160) < 60, np.arange(160) % 2, -1)
    np.savez(work / "train.npz", images=images, labels=labels)
    np.savez(work / "val.npz", images=images[:30], labels=np.arange(30) % 2)
    env = {**os.environ, "MEDSSL_HOME": str(home)}
    for npz in ("train.npz", "val.npz"):
        subprocess.run([sys.executable, "-m", "engine", "import", "--project", "k", "--task", "multiclass",
                        "--classes", "a,b", "--source", str(work / npz)], cwd=REPO, env=env, check=True,
                       capture_output=True)


def sigkills(work: Path, points: list[float]) -> list[dict[str, Any]]:
    """Kill a worker `delay` seconds into a train job (or at its first checkpoint when delay < 0), restart it."""
    rows = []
    for n, delay in enumerate(points):
        home = work / f"kill{n}"
        _project(home, work)
        env = {**os.environ, "MEDSSL_HOME": str(home)}
        subprocess.run([sys.executable, "-m", "engine", "train", "--project", "k", "--method", "mean_teacher",
                        "--epochs", "3"], cwd=REPO, env=env, check=True, capture_output=True)
        labels_before = _counts(home)["labels"]
        first = _worker(home)
        last_pt = home / "checkpoints" / "p1" / "job1" / "last.pt"
        if delay < 0:  # at the first epoch checkpoint
            deadline = time.time() + 120
            while time.time() < deadline and not last_pt.exists():
                time.sleep(0.1)
        else:
            time.sleep(delay)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        second = _worker(home)
        deadline = time.time() + 240
        while time.time() < deadline:
            now = _counts(home)  # one store open per poll
            if now["train_done"] >= 1 and now["predictions"]:
                break
            time.sleep(1)
        second.send_signal(signal.SIGTERM)
        second.wait(120)
        after = _counts(home)
        rows.append({"point": "first checkpoint" if delay < 0 else f"{delay:.0f} s into the job",
                     "resumed": after["train_done"] == 1, "duplicated_rows": max(0, after["checkpoints"] - 1)
                     + max(0, after["analyze_jobs"] - 1), "labels_lost": labels_before - after["labels"]})
    return rows


def faults(work: Path) -> list[dict[str, Any]]:
    """A full disk inside a job (the worker records the reason and serves the next job) and a vanished db."""
    from db.config import StoreConfig
    from db.jobs import enqueue
    from db.models import Job
    from db.store import open_store
    from engine.jobs import HANDLERS, load_handlers
    from engine.worker import Worker

    home = work / "faults"
    _project(home, work)
    before = _counts(home)["labels"]
    load_handlers()

    def full(ctx):
        raise OSError(28, "No space left on device", str(home / "checkpoints" / "x.pt"))

    HANDLERS["disk_full"], HANDLERS["noop"] = full, (lambda ctx: "ok")
    store = open_store(StoreConfig.from_env(home=home))
    with store.sessions.begin() as s:
        ids = [enqueue(s, "disk_full", {}).id, enqueue(s, "noop", {}).id]
    worker = Worker(store, kinds=["disk_full", "noop"])
    worker.serve(once=True)
    worker.close()
    with store.sessions.begin() as s:
        statuses = [s.get(Job, i).status for i in ids]
        message = s.get(Job, ids[0]).message or ""
    store.dispose()
    rows = [{"fault": "disk full inside a job", "handled": statuses == ["failed", "done"] and "disk full" in message,
             "labels_lost": before - _counts(home)["labels"]}]
    proc = _worker(home)
    time.sleep(3)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{home / 'medssl.db'}{suffix}").unlink(missing_ok=True)
    code = proc.wait(60)
    rows.append({"fault": "database file deleted under a running worker",
                 "handled": code == 1 and not (home / "medssl.db").exists(), "labels_lost": 0})
    return rows


def report(result: dict[str, Any]) -> str:
    inputs, kills, injected = result["inputs"], result["sigkills"], result["faults"]
    lines = ["# reliability", "", f"`{result['command']}`", "", f"{result['machine']}, {result['started']}", "",
             "| inputs tried | refused with a reason | crashes | memory peak (traced, MiB) |", "|---|---|---|---|",
             (f"| {len(inputs)} | {sum(r['refused_with_reason'] for r in inputs)} | {sum(r['crash'] for r in inputs)} | "
             f"{max(r['peak_mb'] for r in inputs):.1f} |"), "",
             "| SIGKILL points | resumed | rows duplicated | labels lost |", "|---|---|---|---|",
             (f"| {len(kills)} | {sum(r['resumed'] for r in kills)} | {sum(r['duplicated_rows'] for r in kills)} | "
             f"{sum(r['labels_lost'] for r in kills)} |"), "",
             "| faults injected | handled | labels lost |", "|---|---|---|",
             f"| {len(injected)} | {sum(r['handled'] for r in injected)} | {sum(r['labels_lost'] for r in injected)} |",
             "", "## Inputs", "", "| input | exit | refused with a reason | crash | peak MiB |", "|---|---|---|---|---|"]
    lines += [f"| {r['input']} | {r['exit']} | {r['refused_with_reason']} | {r['crash']} | {r['peak_mb']} |" for r in inputs]
    lines += ["", "## SIGKILL points", "", "| point | resumed | rows duplicated | labels lost |", "|---|---|---|---|"]
    lines += [f"| {r['point']} | {r['resumed']} | {r['duplicated_rows']} | {r['labels_lost']} |" for r in kills]
    lines += ["", "## Faults", "", "| fault | handled | labels lost |", "|---|---|---|"]
    lines += [f"| {r['fault']} | {r['handled']} | {r['labels_lost']} |" for r in injected]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from engine.bench import machine

    parser = argparse.ArgumentParser(prog="python -m engine.bench.reliability", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--kill-after", default="-1,4,9", help="seconds into the job (-1: at the first checkpoint)")
    args = parser.parse_args(argv)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["MEDSSL_HOME"] = str(work / "home")
        os.environ.setdefault("MEDSSL_WARM_UMAP", "0")
        result = {"command": "python -m engine.bench.reliability " + " ".join(argv or sys.argv[1:]),
                  "machine": machine(), "started": started, "inputs": bad_inputs(work),
                  "sigkills": sigkills(work, [float(x) for x in args.kill_after.split(",") if x]),
                  "faults": faults(work)}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "results.json", {k: v for k, v in result.items()})
    (args.out / "results.md").write_text(report(result))
    print(json.dumps({k: result[k] for k in ("command", "started")}), f"-> {args.out / 'results.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
