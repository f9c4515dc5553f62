"""Checkpoint files: one dict with config, class names, metrics, student, teacher, optimizer, step, RNG.

Writes are atomic (temp file in the same folder + os.replace) so a killed worker never leaves a torn file,
and the payload holds only tensors and plain Python values so it loads with weights_only=True.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT_VERSION = 1


def plain(value: Any) -> Any:
    """numpy scalars/arrays and tuples -> plain Python, recursively (weights_only-safe, JSON-ready)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT_VERSION, **payload}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    payload = torch.load(Path(path), map_location=map_location, weights_only=True)
    if payload.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported checkpoint format {payload.get('format')!r}")
    return payload


def cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of a state dict (safe to keep while training continues)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def method_state(ckpt: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The SSLMethod state dict (student., teacher., extras) rebuilt from a checkpoint's separate parts."""
    state = {f"student.{k}": v for k, v in ckpt["student"].items()}
    if ckpt.get("teacher") is not None:
        state.update({f"teacher.{k}": v for k, v in ckpt["teacher"].items()})
    state.update(ckpt.get("method_extra", {}))
    return state
