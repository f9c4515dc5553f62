"""Benchmarks (`python -m engine bench ...`): shared results I/O and a dependency-free PNG bar chart.

results.json follows CONTRACTS §5 exactly; writes are atomic so an interrupted bench never corrupts it.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any


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


def bar_chart_png(path: Path, groups: Sequence[str], series: dict[str, list[tuple[float, float]]],
                  title: str, y_range: tuple[float, float] = (0.5, 1.0)) -> None:
    """Grouped bars with +-std whiskers, drawn with Pillow (matplotlib is not a dependency).

    groups: x-axis groups (label fractions); series: name -> [(mean, std) per group], NaN = missing.
    """
    from PIL import Image, ImageDraw

    width, height, left, bottom, top = 900, 480, 60, 60, 40
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    palette = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
               (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
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
            draw.rectangle([bx, y_of(mean), bx + bar_w - 2, y_of(lo)], fill=palette[s % len(palette)])
            if not math.isnan(std) and std > 0:
                cx = bx + bar_w / 2 - 1
                draw.line([(cx, y_of(mean - std)), (cx, y_of(mean + std))], fill="black", width=2)
    for s, name in enumerate(names):
        y = top + 18 * s
        draw.rectangle([width - 160, y, width - 148, y + 12], fill=palette[s % len(palette)])
        draw.text((width - 142, y), name, fill="black")
    draw.text((left, height - 25), "labeled fraction", fill="black")
    img.save(path)
