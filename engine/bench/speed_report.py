"""`bench speed` results: plan-weighted summaries per (method, backbone), the goals, and the Markdown report.

Kept apart from the measuring code in speed.py: this module only turns measured phase rows into numbers
and text, so it can be read (and changed) without touching what is timed.
"""
from __future__ import annotations

import contextlib
import platform
from pathlib import Path
from typing import Any

PIPELINE_GOAL = 5.0  # the data pipeline alone must feed >= 5x the training rate
FRACTION_GOAL = 0.40  # achieved GFLOP/s / matmul GFLOP/s for the default CPU backbone


def summary(phases: list[dict[str, Any]], method: str, backbone: str, peak: float,
             eval_seconds: float | None) -> dict[str, Any]:
    """Plan-weighted numbers for one (method, backbone): each phase counts by its share of the default plan."""
    mine = [p for p in phases if p["method"] == method and p["backbone"] == backbone]
    seconds = sum(p["plan_steps"] * p["step_seconds"] for p in mine)
    images = sum(p["plan_steps"] * p["images_per_step"] for p in mine)
    flops = sum(p["plan_steps"] * p["gflop_per_step"] for p in mine)
    from engine.core.config import TrainConfig

    epochs = TrainConfig().epochs or 0
    return {"method": method, "backbone": backbone, "images_per_s": images / seconds, "gflops": flops / seconds,
            "fraction_of_matmul": flops / seconds / peak,
            "pipeline_ratio_min": min(p["pipeline_ratio"] for p in mine),
            "plan_steps": sum(p["plan_steps"] for p in mine),
            "projected_train_minutes": seconds / 60.0, "eval_seconds": eval_seconds,
            "projected_run_minutes": None if eval_seconds is None else (seconds + epochs * eval_seconds) / 60.0}


def goals(rows: list[dict[str, Any]], default_backbone: str) -> dict[str, Any]:
    default = {r["method"]: r["fraction_of_matmul"] for r in rows if r["backbone"] == default_backbone}
    src_mt = [r["projected_run_minutes"] for r in rows if r["backbone"] == default_backbone and r["method"] == "src_mt"]
    return {"default_backbone": default_backbone, "fraction_of_matmul_default": default,
            "fraction_goal": FRACTION_GOAL, "fraction_met": bool(default) and min(default.values()) >= FRACTION_GOAL,
            "pipeline_ratio_min": min((r["pipeline_ratio_min"] for r in rows), default=float("nan")),
            "pipeline_goal": PIPELINE_GOAL,
            "pipeline_met": all(r["pipeline_ratio_min"] >= PIPELINE_GOAL for r in rows),
            "src_mt_default_projected_minutes": src_mt[0] if src_mt else None}


HEAD = ("Per method and backbone, weighted by each phase's share of the default plan. `pipeline ×`: the data "
        "path alone (sampling, uint8 gather, the step's weak/strong views) over the training rate, worst phase. "
        "Projected minutes = plan steps × measured step time (+ one validation per planned epoch for the "
        "default backbone); a real run may stop early.")
ROW_COLS = "backbone | method | images/s | GFLOP/s | of matmul | pipeline × | projected train min | projected run min"
PHASE_COLS = ("backbone | method | phase | images/step | s/step | steps timed | images/s | GFLOP/step | GFLOP/s | "
              "of matmul | pipeline images/s | pipeline × | views")


def _table(columns: str, cells: list[list[Any]]) -> list[str]:
    return [f"| {columns} |", "|---" * (columns.count("|") + 1) + "|"] + \
        ["| " + " | ".join(str(c) for c in row) + " |" for row in cells]


def markdown(result: dict[str, Any]) -> str:
    run, mm, outcome = result["runs"][0], result["matmul"], result["goals"]
    sizes = "; ".join(f"{m['when']}: " + ", ".join(f"{n} → {g:.1f}" for n, g in m["per_size"].items())
                      for m in mm["samples"])
    what_if = "**What-if run: models in NCHW (contiguous) on CPU** (train runs channels-last since issue 16)."
    reference = (f"torch.matmul fp32 reference: **{mm['gflops']:.1f} GFLOP/s**, the best median of the samples "
                 f"(n → GFLOP/s: {sizes}).")
    lines = ["# bench speed", "", f"`{run['command']}`", "",
             f"Machine: {run['machine']}; started {run['started']}; whole run {run['seconds']} s.", "",
             reference, "", *([what_if, ""] if run.get("contiguous") else []), HEAD, ""]
    lines += _table(ROW_COLS, [
        [r["backbone"], r["method"], f"{r['images_per_s']:.1f}", f"{r['gflops']:.1f}",
         f"{r['fraction_of_matmul']:.0%}", f"{r['pipeline_ratio_min']:.1f}", f"{r['projected_train_minutes']:.1f}",
         "—" if r["projected_run_minutes"] is None else f"{r['projected_run_minutes']:.1f}"]
        for r in result["rows"]])
    lines += ["", "## Phases", ""] + _table(PHASE_COLS, [
        [p["backbone"], p["method"], p["phase"], p["images_per_step"], f"{p['step_seconds']:.3f}", p["steps_timed"],
         f"{p['images_per_s']:.1f}", f"{p['gflop_per_step']:.2f}", f"{p['gflops']:.1f}",
         f"{p['fraction_of_matmul']:.0%}", f"{p['pipeline_images_per_s']:.0f}", f"{p['pipeline_ratio']:.1f}",
         " ".join(p["views"])] for p in result["phases"]])
    fractions = ", ".join(f"{m} {f:.0%}" for m, f in outcome["fraction_of_matmul_default"].items()) or "—"
    minutes = outcome["src_mt_default_projected_minutes"]
    projected = "—" if minutes is None else f"{minutes:.1f} min"
    lines += ["", "## Goals", "",
              (f"- {outcome['default_backbone']} GFLOP/s as a fraction of matmul (goal ≥ {FRACTION_GOAL:.0%}): "
               f"{fractions} → {'met' if outcome['fraction_met'] else 'not met'}"),
              (f"- data pipeline / training rate, worst cell (goal ≥ {PIPELINE_GOAL:.0f}×): "
               f"{outcome['pipeline_ratio_min']:.1f} → {'met' if outcome['pipeline_met'] else 'not met'}"),
              f"- default SRC-MT run, projected (goal < 10 min): {projected}", ""]
    return "\n".join(lines)


def machine(threads: int) -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        names = [ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                 if ln.startswith("model name")]
        cpu = f"{names[0]} x{len(names)}" if names else cpu
    return f"{cpu}, {platform.system()}, {threads} torch threads, torch {torch.__version__}"
