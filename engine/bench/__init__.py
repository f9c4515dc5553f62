"""Benchmarks (`python -m engine bench ...`): shared results I/O and a dependency-free PNG bar chart.

results.json follows CONTRACTS §5 exactly; writes are atomic so an interrupted bench never corrupts it.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]  # matplotlib's tab10, for the PNGs


def load_results(path: Path) -> dict[str, Any]:
    if path.exists():
        return json.loads(path.read_text())
    return {"runs": [], "rows": []}


def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(obj, fh, indent=2, allow_nan=True)
    os.replace(tmp, path)


def mean_std(values: list[Any]) -> tuple[float, float]:
    """Mean and **sample** std (ddof = 1) over seeds, ignoring missing (None/NaN) values; the std is NaN with
    fewer than two values, the mean NaN when nothing is left."""
    arr = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return float("nan"), float("nan")
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else float("nan")


def float_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The scalar entries of a metrics dict (per-class tables and arrays left out), for cells/*.json."""
    return {k: v for k, v in metrics.items() if isinstance(v, float)}


def class_names(folder: Path, labels: np.ndarray, key: str = "labels") -> tuple[str, ...]:
    """dataset.json's class names (they name the `labels` array only), else class_<i>."""
    meta = folder / "dataset.json"
    if meta.exists() and key == "labels":
        return tuple(json.loads(meta.read_text())["classes"])
    return tuple(f"class_{i}" for i in range(int(labels.max()) + 1))


def machine(threads: int | None = None) -> str:
    """Where a bench ran, for results.json runs[].machine; `threads` is what the cells use (--threads),
    not the process default."""
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return f"{platform.machine()} {platform.system()}, {threads or torch.get_num_threads()} torch threads, " \
           f"{device}, torch {torch.__version__}"


def command(prog: str, add_arguments: Callable[[argparse.ArgumentParser], None], args: argparse.Namespace) -> str:
    """The bench invocation rebuilt from its own options (the CLI's namespace carries others too)."""
    probe = argparse.ArgumentParser(add_help=False)
    add_arguments(probe)
    parts = [prog]
    for action in probe._actions:
        value = getattr(args, action.dest, None)
        if value is None or value is False:
            continue
        parts.append(action.option_strings[0] if value is True else f"{action.option_strings[0]} {shlex.quote(str(value))}")
    return " ".join(parts)


def fraction_report(rows: list[dict[str, Any]], out: Path, intro: list[str], keys: Sequence[str], metric: str,
                    png_name: str, chart_title: str, runs: Sequence[dict[str, Any]] = (),
                    baseline: str | None = None, references: tuple[str, ...] = ("plain",),
                    select_key: str | None = None) -> None:
    """results.md (the commands that made it, one mean ± std table per label fraction and, with `baseline`,
    its per-seed paired deltas against it and the `references` rows; with `select_key` too, what the product
    delivers under best_on_val) and a bar chart of `metric`, for bench ssl/seg."""
    from engine.bench.paired import delivered_table, paired_table

    fractions = sorted({r["label_fraction"] for r in rows})
    methods = list(dict.fromkeys(r["method"] for r in rows))
    rest = list(intro[1:])
    while rest and not rest[0]:
        rest.pop(0)
    lines = [intro[0], "", *[f"`{run['command']}`  \n{run.get('machine', '')}, {run.get('started', '')}"
                             for run in runs], *([""] if runs else []), *rest, ""]
    for fraction in fractions:
        lines += [f"## label fraction {fraction}", "", "| method | n | " + " | ".join(keys) + " |",
                  "|---" * (len(keys) + 2) + "|"]
        for method in methods:
            cell = [r for r in rows if r["method"] == method and r["label_fraction"] == fraction]
            if cell:
                stats = [mean_std([r[k] for r in cell]) for k in keys]
                lines.append(f"| {method} | {len(cell)} | " + " | ".join(f"{m:.4f} ± {s:.4f}" for m, s in stats) + " |")
        lines.append("")
        if baseline:
            lines += paired_table(rows, fraction, metric, baseline, references)
            if select_key:
                lines += delivered_table(rows, fraction, metric, baseline, select_key, references)
    (out / "results.md").write_text("\n".join(lines))
    series = {m: [mean_std([r[metric] for r in rows if r["method"] == m and r["label_fraction"] == f])
                  for f in fractions] for m in methods}
    lows = [m - s for v in series.values() for m, s in v if not np.isnan(m)]
    bar_chart_png(out / png_name, [str(f) for f in fractions], series, chart_title,
                  (max(0.0, min(lows, default=0.5) - 0.05), 1.0))


def bar_chart_png(path: Path, groups: Sequence[str], series: dict[str, list[tuple[float, float]]],
                  title: str, y_range: tuple[float, float] = (0.5, 1.0)) -> None:
    """Grouped bars with +-std whiskers, drawn with Pillow (matplotlib is not a dependency).

    groups: x-axis groups (label fractions); series: name -> [(mean, std) per group], NaN = missing.
    """
    from PIL import Image, ImageDraw

    width, height, left, bottom, top = 900, 480, 60, 60, 40
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    lo, hi = y_range

    def y_of(value: float) -> float:
        value = min(max(value, lo), hi)
        return height - bottom - (value - lo) / (hi - lo) * (height - bottom - top)

    draw.text((left, 10), title, fill="black")
    for tick in range(6):
        value = lo + (hi - lo) * tick / 5
        draw.line([(left, y_of(value)), (width - 170, y_of(value))], fill=(225, 225, 225))
        draw.text((10, y_of(value) - 6), f"{value:.2f}", fill="black")
    names = list(series)
    group_w = (width - 170 - left) / max(len(groups), 1)
    bar_w = group_w * 0.8 / max(len(names), 1)
    for g, group in enumerate(groups):
        x0 = left + g * group_w + group_w * 0.1
        draw.text((x0 + group_w * 0.3, height - bottom + 10), str(group), fill="black")
        for s, name in enumerate(names):
            mean, std = series[name][g]
            if math.isnan(mean):  # no data for this cell
                continue
            bx = x0 + s * bar_w
            draw.rectangle([bx, y_of(mean), bx + bar_w - 2, y_of(lo)], fill=PALETTE[s % len(PALETTE)])
            if not math.isnan(std) and std > 0:
                cx = bx + bar_w / 2 - 1
                draw.line([(cx, y_of(mean - std)), (cx, y_of(mean + std))], fill="black", width=2)
    for s, name in enumerate(names):
        y = top + 18 * s
        draw.rectangle([width - 160, y, width - 148, y + 12], fill=PALETTE[s % len(PALETTE)])
        draw.text((width - 142, y), name, fill="black")
    draw.text((left, height - 25), "labeled fraction", fill="black")
    img.save(path)
