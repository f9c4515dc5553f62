"""Learning-curve reports for `bench al`: markdown table + headline and a Pillow PNG line chart.

Pillow because matplotlib is not a dependency; kept apart from al.py so the bench loop stays readable.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from engine.bench import PALETTE, mean_std


def line_chart_png(path: Path, series: dict[str, list[tuple[float, float, float]]], title: str,
                   x_label: str, y_range: tuple[float, float] | None = None,
                   hline: tuple[float, str] | None = None) -> None:
    """One line per series through (x, mean, std) points, with +-std whiskers; NaN means are skipped.

    y_range None: fitted to the data (+-std) with a small margin. hline: (y, label) dashed reference,
    e.g. random's final AUC, so 'labels needed to reach it' can be read off the chart.
    """
    from PIL import Image, ImageDraw

    width, height, left, right, bottom, top = 900, 480, 60, 170, 60, 40
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    points = [(x, m, s) for pts in series.values() for x, m, s in pts if not math.isnan(m)]
    xs = [p[0] for p in points] or [0.0, 1.0]
    x_lo, x_hi = min(xs), max(xs)
    x_hi = x_hi if x_hi > x_lo else x_lo + 1.0
    if y_range is None:
        lows = [m - (0 if math.isnan(s) else s) for _, m, s in points] or [0.0]
        highs = [m + (0 if math.isnan(s) else s) for _, m, s in points] or [1.0]
        if hline is not None:
            lows, highs = lows + [hline[0]], highs + [hline[0]]
        y_range = (max(0.0, min(lows) - 0.02), min(1.0, max(highs) + 0.02))
    lo, hi = y_range
    hi = hi if hi > lo else lo + 0.05
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - x_lo) / (x_hi - x_lo) * plot_w

    def py(y: float) -> float:
        return height - bottom - (min(max(y, lo), hi) - lo) / (hi - lo) * plot_h

    draw.text((left, 10), title, fill="black")
    for tick in range(6):
        value = lo + (hi - lo) * tick / 5
        draw.line([(left, py(value)), (width - right, py(value))], fill=(225, 225, 225))
        draw.text((10, py(value) - 6), f"{value:.3f}", fill="black")
    for x in sorted(set(xs)):
        draw.line([(px(x), height - bottom), (px(x), height - bottom + 4)], fill="black")
        draw.text((px(x) - 10, height - bottom + 8), f"{x:g}", fill="black")
    draw.line([(left, height - bottom), (width - right, height - bottom)], fill="black")
    if hline is not None:
        y = py(hline[0])
        for x0 in range(left, width - right, 12):
            draw.line([(x0, y), (min(x0 + 6, width - right), y)], fill=(90, 90, 90))
        draw.text((left + 4, y - 14), hline[1], fill=(90, 90, 90))
    for i, (name, pts) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        valid = sorted((x, m, s) for x, m, s in pts if not math.isnan(m))
        if len(valid) > 1:
            draw.line([(px(x), py(m)) for x, m, _ in valid], fill=color, width=2)
        for x, m, s in valid:
            if not math.isnan(s) and s > 0:
                draw.line([(px(x), py(m - s)), (px(x), py(m + s))], fill=color, width=1)
            draw.ellipse([px(x) - 3, py(m) - 3, px(x) + 3, py(m) + 3], fill=color)
        y = top + 18 * i + 20
        draw.rectangle([width - right + 10, y, width - right + 22, y + 12], fill=color)
        draw.text((width - right + 28, y), name, fill="black")
    draw.text((left + plot_w // 2 - 30, height - 25), x_label, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def labels_to_reach(curve: dict[int, float], target: float) -> int | None:
    """Smallest label count whose mean test AUC reaches target (None: never within the curve)."""
    return next((n for n in sorted(curve) if not math.isnan(curve[n]) and curve[n] >= target), None)


def write_report(rows: list[dict[str, Any]], out: Path) -> None:
    """results.md (mean ± std table, headline) and learning_curve.png (one line per strategy)."""
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    counts = sorted({r["labels"] for r in rows})
    stats = {s: {n: mean_std([r["test_auc"] for r in rows if r["strategy"] == s and r["labels"] == n])
                 for n in counts} for s in strategies}
    seeds = {s: sorted({r["seed"] for r in rows if r["strategy"] == s}) for s in strategies}
    minutes = {s: sum(r["train_seconds"] + r.get("select_seconds", 0.0) for r in rows if r["strategy"] == s)
               / 60.0 / max(len(seeds[s]), 1) for s in strategies}
    methods = sorted({r["method"] for r in rows})
    lines = ["# bench al", "", (f"Method {', '.join(methods)}; test AUC (teacher where one exists, selected on "
             "val) mean ± std over seeds, by number of labels. Round 0 is shared by all strategies at a seed."),
             "", "| strategy | seeds | " + " | ".join(str(n) for n in counts) + " | min/curve |",
             "|---" * (len(counts) + 3) + "|"]
    for s in strategies:
        cells = [f"{m:.4f} ± {sd:.4f}" if not math.isnan(m) else "–" for m, sd in (stats[s][n] for n in counts)]
        lines.append(f"| {s} | {len(seeds[s])} | " + " | ".join(cells) + f" | {minutes[s]:.1f} |")
    lines += ["", "min/curve: training + selection minutes per curve (round 0 included), mean over seeds.", ""]
    hline = None
    random_curve = {n: m for n, (m, _) in stats.get("random", {}).items() if not math.isnan(m)}
    if random_curve:
        final = max(random_curve)
        target = random_curve[final]
        hline = (target, f"random @ {final}")
        reach = {s: labels_to_reach({n: m for n, (m, _) in stats[s].items()}, target)
                 for s in strategies if s != "random"}
        own = labels_to_reach(random_curve, target)
        lines.append(f"Random reaches mean test AUC {target:.4f} with {final} labels" + (
            f" (and first reached it at {own}: its curve is flat near the end, so this headline is weak)."
            if own is not None and own < final else "."))
        for s, n in reach.items():
            lines.append(f"- {s}: " + (f"{n} labels ({n / final:.0%} of random's)" if n else "not reached"))
        reached = {s: n for s, n in reach.items() if n}
        if reached:
            best = min(reached, key=lambda s: (reached[s], -stats[s][counts[-1]][0]))
            frac = reached[best] / final
            lines.append(f"\n**Headline:** `{best}` reaches random's final AUC with {reached[best]} labels = "
                         f"{frac:.0%} of random's {final} (goal ≤ 60 %: {'met' if frac <= 0.6 else 'not met'}).")
        elif reach:
            lines.append("\n**Headline:** no strategy reaches random's final AUC within the curve.")
        else:
            lines.append("\n**Headline:** none yet (only random has run).")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    series = {s: [(float(n), *stats[s][n]) for n in counts] for s in strategies}
    line_chart_png(out / "learning_curve.png", series, "test AUC vs labels (mean ± std over seeds)", "labels",
                   hline=hline)
