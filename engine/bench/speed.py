"""`bench speed`: CPU training throughput per method x backbone, against torch.matmul, in one process.

Issue 3 asks for images/s, the achieved GFLOP/s of a training step as a fraction of what torch.matmul
reaches in the same process and thread count, and the data pipeline's headroom over training. Every step
timed here is the training loop's own step (engine.training.loop's trainer: same sampler, views, method class,
optimizer, EMA, channels_last/AMP choices), so the numbers describe what `train` actually runs.

Methods have phases with different step costs (warm start, consistency, S2MTS2 pre-training); each phase
is timed on its own steps of the default plan, and the per-method numbers are weighted by the phases'
shares of that plan. FLOPs come from torch.utils.flop_counter on one step (student forward + backward +
teacher/key forwards); elementwise work (BN, ReLU, augmentation) costs time but counts no FLOPs.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from engine.bench import class_names, write_json
from engine.bench.speed_report import goals, machine, markdown, summary

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path, help="folder with train.npz (and val.npz)")
    parser.add_argument("--methods", default="supervised,mean_teacher,src_mt,s2mts2")
    parser.add_argument("--backbones", default="compact_cnn,resnet18_small,densenet121")
    parser.add_argument("--steps", type=int, default=20, help="most timed steps per phase")
    parser.add_argument("--max-seconds", type=float, default=6.0,
                        help="stop timing a phase after this long (at least 2 steps), so big backbones stay cheap")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: as training)")
    parser.add_argument("--label-fraction", type=float, default=0.05)
    parser.add_argument("--matmul-sizes", default="1024,2048", help="square fp32 matmul sizes (the reference)")
    parser.add_argument("--contiguous", action="store_true",
                        help="what-if: models in NCHW on CPU, as training was before issue 16 (train: channels-last)")
    parser.add_argument("--out", required=True, type=Path)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    import torch

    from engine.core.config import TrainConfig
    from engine.core.device import default_threads
    from engine.methods import METHODS
    from engine.models import MODELS

    methods = [m for m in args.methods.split(",") if m]
    backbones = [b for b in args.backbones.split(",") if b]
    unknown = [m for m in methods if m not in METHODS] + [b for b in backbones if b not in MODELS]
    if unknown:
        print(f"unknown methods/backbones: {unknown}", file=sys.stderr)
        return 2
    threads = args.threads or default_threads()
    torch.set_num_threads(threads)
    data = _load(args.data, args.label_fraction)
    started, tic = time.strftime("%Y-%m-%dT%H:%M:%S%z"), time.perf_counter()
    sizes = [int(s) for s in args.matmul_sizes.split(",") if s]
    samples: list[dict[str, Any]] = []  # sampled before each backbone and at the end: load drifts
    phases: list[dict[str, Any]] = []
    evals: dict[tuple[str, str], float] = {}
    default_backbone = TrainConfig().backbone
    for backbone in backbones:
        samples.append({"when": f"before {backbone}", **matmul_gflops(sizes)})
        for method in methods:
            rows, eval_seconds = _measure(data, method, backbone, args, timed_eval=backbone == default_backbone)
            phases += rows
            if eval_seconds is not None:
                evals[(method, backbone)] = eval_seconds
    samples.append({"when": "end", **matmul_gflops(sizes)})
    peak = max(m["gflops"] for m in samples)  # the stricter reference
    for row in phases:
        row["fraction_of_matmul"] = row["gflops"] / peak
    rows = [summary(phases, m, b, peak, evals.get((m, b))) for b in backbones for m in methods]
    result = {"runs": [{"command": "python -m engine bench speed " + shlex.join(argv), "machine": machine(threads),
                        "started": started, "threads": threads, "contiguous": args.contiguous,
                        "seconds": round(time.perf_counter() - tic, 1)}],
              "matmul": {"gflops": peak, "samples": samples}, "rows": rows, "phases": phases,
              "goals": goals(rows, default_backbone)}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "results.json", result)
    (args.out / "results.md").write_text(markdown(result))
    print(f"wrote {args.out / 'results.json'}, {args.out / 'results.md'} ({result['runs'][0]['seconds']} s)")
    return 0


def matmul_gflops(sizes: list[int], repeats: int = 5) -> dict[str, Any]:
    """fp32 square torch.matmul: 2n^3 FLOPs per call; median of `repeats` after one warm-up call per size."""
    import torch

    per_size = {}
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.matmul(a, b)
        times = []
        for _ in range(repeats):
            tic = time.perf_counter()
            torch.matmul(a, b)
            times.append(time.perf_counter() - tic)
        per_size[str(n)] = 2.0 * n**3 / statistics.median(times) / 1e9
    return {"per_size": per_size, "gflops": max(per_size.values())}


def _load(folder: Path, fraction: float) -> Any:
    from engine.loaders.datasets import ArrayData, stratified_subset

    train = np.load(folder / "train.npz")
    labels = train["labels"].astype(np.int64)
    labeled = stratified_subset(labels, fraction, 0)
    partial = np.full_like(labels, -1)
    partial[labeled] = labels[labeled]
    val = np.load(folder / "val.npz") if (folder / "val.npz").exists() else None
    return ArrayData(train["images"], partial, class_names(folder, labels),
                     val_images=None if val is None else val["images"],
                     val_labels=None if val is None else val["labels"].astype(np.int64))


def _measure(data: Any, method: str, backbone: str, args: argparse.Namespace,
             timed_eval: bool) -> tuple[list[dict[str, Any]], float | None]:
    """Time every phase of `method` on `backbone` with the real trainer; optionally one validation pass."""
    from engine.core.config import TrainConfig
    from engine.training.loop import _Trainer  # the loop's own step, not a copy of it

    cfg = TrainConfig(method=method, backbone=backbone, device="cpu", num_threads=args.threads,
                      channels_last=not args.contiguous)
    trainer = _Trainer(cfg, data, method, (), None, None)
    total = trainer._fixed_total()  # the default run's plan: ramps and phases as `train` would set them
    trainer._set_plan(total)
    bounds = [(name, 0 if frac == 0 else int(frac * total) + 1) for name, frac in trainer.method.phase_fractions()]
    rows = []
    for i, (phase, start) in enumerate(bounds):
        end = bounds[i + 1][1] if i + 1 < len(bounds) else total
        row = _time_phase(trainer, start, end, args.steps, args.max_seconds)
        row.update(method=method, backbone=backbone, phase=phase, plan_steps=max(end - start, 0))
        rows.append(row)
        print(f"{backbone:>15} {method:>13} {phase:>12}: {row['images_per_s']:8.1f} img/s "
              f"{row['gflops']:7.1f} GFLOP/s  pipeline x{row['pipeline_ratio']:.1f}  ({row['steps_timed']} steps)",
              flush=True)
    eval_seconds = None
    if timed_eval:
        tic = time.perf_counter()
        trainer._evaluate()
        eval_seconds = time.perf_counter() - tic
    return rows, eval_seconds


def _time_phase(trainer: Any, start: int, end: int, max_steps: int, max_seconds: float) -> dict[str, Any]:
    """One FLOP-counted step (also the warm-up, recording the views it makes), then timed steps."""
    from torch.utils.flop_counter import FlopCounterMode

    trainer.step = start
    calls: list[tuple[str, int]] = []
    images = _step_images(trainer, start)
    tic = time.perf_counter()
    with FlopCounterMode(display=False) as counter, _record_views(trainer.method.views, calls):
        trainer._train_step()
    if time.perf_counter() - tic < 2.0:  # light steps: one plain warm-up too (heavy ones paid it above)
        trainer._train_step()
    times: list[float] = []
    limit = max(min(max_steps, end - trainer.step, len(trainer.lr) - trainer.step), 1)
    phase_tic = time.perf_counter()
    while len(times) < limit and (len(times) < 2 or time.perf_counter() - phase_tic < max_seconds):
        tic = time.perf_counter()
        trainer._train_step()
        times.append(time.perf_counter() - tic)
    seconds = statistics.median(times)
    flops = float(counter.get_total_flops())
    pipe = _pipeline_rate(trainer, start, calls, images)
    rate = images / seconds
    return {"images_per_step": images, "step_seconds": seconds, "steps_timed": len(times), "images_per_s": rate,
            "gflop_per_step": flops / 1e9, "gflops": flops / seconds / 1e9, "pipeline_images_per_s": pipe,
            "pipeline_ratio": pipe / rate, "views": [f"{k}x{n}" for k, n in calls]}


def _step_images(trainer: Any, step: int) -> int:
    """Labeled + unlabeled images one step reads (the unlabeled stream only in phases that use it)."""
    lab, unl = trainer.sampler.batch(step, trainer.method.needs_unlabeled(step))
    return len(lab) + len(unl)


@contextlib.contextmanager
def _record_views(views: Any, calls: list[tuple[str, int]]) -> Iterator[None]:
    """Log (kind, batch size) of every weak/strong view the method makes, to replay them without a model."""

    def wrap(kind: str, make: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(images: Any, gen: Any) -> Any:
            calls.append((kind, int(images.shape[0])))
            return make(images, gen)

        return recorded

    for kind in ("weak", "strong"):
        setattr(views, kind, wrap(kind, getattr(views, kind)))  # instance attribute shadows the method
    try:
        yield
    finally:
        for kind in ("weak", "strong"):
            delattr(views, kind)


def _pipeline_rate(trainer: Any, step: int, calls: list[tuple[str, int]], images: int,
                   repeats: int = 20, max_seconds: float = 2.0) -> float:
    """Images/s of the data path alone: sample indices, gather uint8, make the recorded views; no model."""
    import torch

    def one_pass(s: int) -> None:
        lab, unl = (torch.from_numpy(i).to(trainer.device)
                    for i in trainer.sampler.batch(s, trainer.method.needs_unlabeled(s)))
        pool = torch.cat([trainer.images[lab], trainer.images[unl]])
        gen = torch.Generator(device=trainer.device)
        gen.manual_seed(s)
        for kind, n in calls:
            trainer.method.views.make(kind, pool[:n], gen)

    one_pass(step)
    times: list[float] = []
    begin = time.perf_counter()
    while len(times) < repeats and (len(times) < 3 or time.perf_counter() - begin < max_seconds):
        tic = time.perf_counter()
        one_pass(step + len(times))
        times.append(time.perf_counter() - tic)
    return images / statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    """Entry for `python -m engine bench speed ...` (and `python -m engine.bench.speed ...`)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="bench speed", description=__doc__.splitlines()[0])
    add_arguments(parser)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    return run(parser.parse_args(argv), argv)


if __name__ == "__main__":
    raise SystemExit(main())
