"""Per-seed paired deltas for bench ssl/seg tables: each method minus its baseline on the same seed and label
fraction (same labeled subset), so a reader sees whether a mean gain holds seed by seed, not only on average.

Three baselines per method where the run has them: the wall-clock-matched `supervised` (the product's promise:
the same minutes on the same labels), the iteration-matched `supervised@<method>`, and bench ssl's `plain`
reference loop (same wall clock); `plain` itself is compared with `supervised` once. bench seg's
`--from-shadow` runs name `seg_supervised_continued` (supervised training continued from the shadow for the
same minutes) as their reference instead.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def _by_seed(rows: list[dict[str, Any]], method: str, fraction: float, metric: str) -> dict[int, float]:
    return {int(r["seed"]): float(r[metric]) for r in rows
            if r["method"] == method and r["label_fraction"] == fraction and r.get(metric) is not None}


def paired_rows(rows: list[dict[str, Any]], fraction: float, metric: str, baseline: str,
                references: tuple[str, ...] = ("plain",)) -> list[dict[str, Any]]:
    """[{method, vs, deltas: {seed: Δ}, mean}] for every (method, baseline) pair with ≥ 1 paired seed."""
    methods = [m for m in dict.fromkeys(r["method"] for r in rows if r["label_fraction"] == fraction)
               if m != baseline and m not in references and "@" not in m]
    pairs = [(ref, baseline) for ref in references] + \
        [(m, vs) for m in methods for vs in (baseline, f"{baseline}@{m}", *references)]
    out = []
    for method, vs in pairs:
        mine, theirs = _by_seed(rows, method, fraction, metric), _by_seed(rows, vs, fraction, metric)
        deltas = {seed: mine[seed] - theirs[seed] for seed in sorted(mine.keys() & theirs.keys())}
        if deltas:
            out.append({"method": method, "vs": vs, "deltas": deltas, "mean": float(np.mean(list(deltas.values())))})
    return out


def paired_table(rows: list[dict[str, Any]], fraction: float, metric: str, baseline: str,
                 references: tuple[str, ...] = ("plain",)) -> list[str]:
    """Markdown lines: one row per (method, baseline) pair; Δ in the metric's units, + = method better."""
    pairs = paired_rows(rows, fraction, metric, baseline, references)
    if not pairs:
        return []
    seeds = sorted({s for p in pairs for s in p["deltas"]})
    lines = [f"Paired Δ {metric} (method − baseline, same seed and labeled subset):", "",
             "| method | vs | pairs | mean Δ | " + " | ".join(f"Δ seed {s}" for s in seeds) + " |",
             "|---" * (4 + len(seeds)) + "|"]
    for p in pairs:
        cells = [f"{p['deltas'][s]:+.4f}" if s in p["deltas"] else "–" for s in seeds]
        lines.append(f"| {p['method']} | {p['vs']} | {len(p['deltas'])} | {p['mean']:+.4f} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def delivered_rows(rows: list[dict[str, Any]], fraction: float, metric: str, baseline: str, select_key: str,
                   references: tuple[str, ...] = ("plain",)) -> list[dict[str, Any]]:
    """What the product hands over under `activate = best_on_val` (engine.jobs.shadow.choose_active): per seed,
    the method's model unless the baseline (the supervised shadow) scored higher on `select_key`; a tie keeps
    the method. [{method, picks: {seed: "ssl" | "shadow"}, deltas: {seed: Δ metric vs baseline}, mean}]."""
    methods = [m for m in dict.fromkeys(r["method"] for r in rows if r["label_fraction"] == fraction)
               if m != baseline and m not in references and "@" not in m]
    base_metric, base_val = (_by_seed(rows, baseline, fraction, k) for k in (metric, select_key))
    out = []
    for method in methods:
        mine, mine_val = (_by_seed(rows, method, fraction, k) for k in (metric, select_key))
        seeds = sorted(mine.keys() & mine_val.keys() & base_metric.keys() & base_val.keys())
        picks = {s: "ssl" if mine_val[s] >= base_val[s] else "shadow" for s in seeds}
        deltas = {s: (mine[s] if picks[s] == "ssl" else base_metric[s]) - base_metric[s] for s in seeds}
        if deltas:
            out.append({"method": method, "picks": picks, "deltas": deltas,
                        "mean": float(np.mean(list(deltas.values())))})
    return out


def delivered_table(rows: list[dict[str, Any]], fraction: float, metric: str, baseline: str, select_key: str,
                    references: tuple[str, ...] = ("plain",)) -> list[str]:
    """Markdown lines for `delivered_rows`: the delivered model's Δ vs the baseline and which one each seed got."""
    found = delivered_rows(rows, fraction, metric, baseline, select_key, references)
    if not found:
        return []
    seeds = sorted({s for d in found for s in d["deltas"]})
    lines = [(f"What the product delivers (`activate = best_on_val`: the method's model, or the `{baseline}` shadow "
              f"where it scored higher on {select_key}); Δ {metric} vs {baseline}, the pick in brackets:"), "",
             "| method | pairs | mean Δ | " + " | ".join(f"Δ seed {s}" for s in seeds) + " |",
             "|---" * (3 + len(seeds)) + "|"]
    for d in found:
        cells = [f"{d['deltas'][s]:+.4f} ({d['picks'][s]})" if s in d["deltas"] else "–" for s in seeds]
        lines.append(f"| {d['method']} | {len(d['deltas'])} | {d['mean']:+.4f} | " + " | ".join(cells) + " |")
    return [*lines, ""]
