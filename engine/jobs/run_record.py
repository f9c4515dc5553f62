"""What a finished training run registers: its checkpoint file and the metrics block of its Checkpoint row.

Shared by a train job's own run and its supervised shadow, so both rows carry the same fields.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.training.result import TrainResult


def checkpoint_file(result: TrainResult, run_dir: Path) -> Path:
    """best.pt, else last.pt (a run whose val metric never improved); an error when neither was written."""
    best = next((Path(p) for p in (result.best_checkpoint, result.last_checkpoint) if p is not None and Path(p).exists()),
                None)
    if best is None:
        raise RuntimeError(f"training finished but wrote no checkpoint file in {run_dir}")
    return best


def run_metrics(result: TrainResult, snap: Any, role: str) -> dict[str, Any]:
    """Val metrics of the selected model, and the labels it trained on / was selected on."""
    val_labels = 0 if snap.val_labels is None else len(snap.val_labels)
    return {"val": result.best_metrics, "role": role, "epochs_run": result.epochs_run,
            "labels": {"train": snap.labels_used - val_labels, "val": val_labels},
            "stopped": result.stopped, "train_seconds": round(result.train_seconds, 1)}
