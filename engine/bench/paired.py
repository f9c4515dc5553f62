"""Per-seed paired deltas for bench ssl/seg tables: each method minus its baseline on the same seed and label
fraction (same labeled subset), so a reader sees whether a mean gain holds seed by seed, not only on average.

Three baselines per method where the run has them: the wall-clock-matched `supervised` (the product's promise:
the same minutes on the same labels), the iteration-matched `supervised@<method>`, and bench ssl's `plain`
reference loop (same wall clock); `plain` itself is compared with `supervised` once. bench seg's
`--from-shadow` runs name `seg_supervised_continued` (supervised training continued from the shadow for the
same minutes) as their reference instead.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def _by_seed(rows: list[dict[str, Any]], method: str, fraction: float, metric: str) -> dict[int, float]:
    return {int(r["seed"]): float(r[metric]) for r in rows
            if r["method"] == method and r["label_fraction"] == fraction and r.get(metric) is not None}


def _compared_methods(rows: list[dict[str, Any]], fraction: float, baseline: str,
                      references: tuple[str, ...]) -> list[str]:
    """The fraction's methods under comparison: not the baseline, a reference row or a `baseline@M` twin."""
    return [m for m in dict.fromkeys(r["method"] for r in rows if r["label_fraction"] == fraction)
            if m != baseline and m not in references and "@" not in m]


def paired_rows(rows: list[dict[str, Any]], fraction: float, metric: str, baseline: str,
                references: tuple[str, ...] = ("plain",)) -> list[dict[str, Any]]:
    """[{method, vs, deltas: {seed: Δ}, mean}] for every (method, baseline) pair with ≥ 1 paired seed."""
    methods = _compared_methods(rows, fraction, baseline, references)
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
    return _seed_table(f"Paired Δ {metric} (method − baseline, same seed and labeled subset):", ("method", "vs"),
                       pairs, lambda p: (p["method"], p["vs"]), lambda p, s: f"{p['deltas'][s]:+.4f}")


def delivered_rows(rows: list[dict[str, Any]], fraction: float, metric: str, baseline: str, select_key: str,
                   references: tuple[str, ...] = ("plain",)) -> list[dict[str, Any]]:
    """What the product hands over under `activate = best_on_val` (its own rule, choose_active): per seed,
    the method's model unless the baseline (the supervised shadow) scored higher on `select_key`; a tie keeps
    the method. [{method, picks: {seed: "ssl" | "shadow"}, deltas: {seed: Δ metric vs baseline}, mean}]."""
    # the product's own rule; a torch-heavy module, so imported only when a delivered table is asked for
    from engine.jobs.shadow import choose_active

    methods = _compared_methods(rows, fraction, baseline, references)
    base_metric, base_val = (_by_seed(rows, baseline, fraction, k) for k in (metric, select_key))
    out = []
    for method in methods:
        mine, mine_val = (_by_seed(rows, method, fraction, k) for k in (metric, select_key))
        seeds = sorted(mine.keys() & mine_val.keys() & base_metric.keys() & base_val.keys())
        picks = {s: choose_active("best_on_val", {"delta": mine_val[s] - base_val[s], "value": base_val[s],
                                                  "ssl_value": mine_val[s]})[0] for s in seeds}
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
    title = (f"What the product delivers (`activate = best_on_val`: the method's model, or the `{baseline}` shadow "
             f"where it scored higher on {select_key}); Δ {metric} vs {baseline}, the pick in brackets:")
    return _seed_table(title, ("method",), found, lambda d: (d["method"],),
                       lambda d, s: f"{d['deltas'][s]:+.4f} ({d['picks'][s]})")


def _seed_table(title: str, lead: tuple[str, ...], entries: list[dict[str, Any]],
                lead_cells: Callable[[dict[str, Any]], tuple[str, ...]],
                seed_cell: Callable[[dict[str, Any], int], str]) -> list[str]:
    """One markdown table: the lead columns, pairs, mean Δ, then one column per seed ("–" where not run)."""
    seeds = sorted({s for e in entries for s in e["deltas"]})
    lines = [title, "", "| " + " | ".join([*lead, "pairs", "mean Δ", *(f"Δ seed {s}" for s in seeds)]) + " |",
             "|---" * (len(lead) + 2 + len(seeds)) + "|"]
    for e in entries:
        cells = [seed_cell(e, s) if s in e["deltas"] else "–" for s in seeds]
        lines.append("| " + " | ".join([*lead_cells(e), str(len(e["deltas"])), f"{e['mean']:+.4f}", *cells]) + " |")
    return [*lines, ""]
