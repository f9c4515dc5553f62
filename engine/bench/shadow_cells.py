"""The supervised shadow inside bench ssl/seg `--from-shadow` runs (the product's train-job protocol).

The baseline cell of a (label fraction, seed) is the shadow: its selected weights are kept under
`<out>/shadows/`, and every other cell of that fraction and seed that the product would start from the shadow
(SSL methods, their supervised@M twins, `<baseline>_continued`) loads them instead of starting from scratch.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch


def continued(baseline: str) -> str:
    """The reference row of a --from-shadow run: the baseline trained on from the shadow for the same budget,
    so an SSL row is compared with supervised training that also had the shadow's minutes."""
    return f"{baseline}_continued"


def shadow_path(out: Path, fraction: float, seed: int) -> Path:
    return out / "shadows" / f"{fraction}_{seed}.pt"


def save_shadow(path: Path, role: str, state: dict[str, torch.Tensor]) -> None:
    """Atomic (save_checkpoint): a bench killed mid-write leaves no torn shadow for the next cells."""
    from engine.core.checkpoints import save_checkpoint

    save_checkpoint(path, {"role": role, "state": state})


def load_shadow(path: Path, baseline: str) -> dict[str, Any]:
    """The shadow cell's selected weights (its `role`'s state), as the product's initial_weights reads them."""
    if not path.exists():
        raise SystemExit(f"{path} is missing: the {baseline} cell of this fraction and seed ran without "
                         "--from-shadow (or its file was removed); rerun that cell into a fresh --out")
    from engine.core.checkpoints import load_checkpoint

    return load_checkpoint(path)["state"]


def cell_order(methods: list[str], baseline: str, from_shadow: bool) -> list[str] | None:
    """--from-shadow: the shadow first (the others need its weights), then its continuation, then the rest.
    None, with the reason on stderr, when the baseline is not among the methods (there would be no shadow)."""
    if not from_shadow:
        return methods
    if baseline not in methods:
        print(f"--from-shadow needs {baseline} in --methods (it is the shadow)", file=sys.stderr)
        return None
    return [baseline, continued(baseline), *[m for m in methods if m not in (baseline, continued(baseline))]]
