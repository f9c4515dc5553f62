"""Runtime device choice, seeding and mixed precision. Nothing here runs at import time."""
from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch


def pick_device(preference: str = "auto") -> torch.device:
    """CUDA when present (or asked for), then Apple MPS, else CPU."""
    if preference != "auto":
        return torch.device(preference)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def default_threads() -> int:
    """CPU threads for training: every usable core (issue 16 §0).

    One core was kept free for the app before; that halved the compute of every budget. The worker now runs
    at a lower OS priority instead (lower_priority), so the app and the database still win a busy core:
    `python -m engine.bench.label_latency` measures the Label page's key press while a job trains.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS / Windows
        cores = os.cpu_count() or 1
    return max(1, cores)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices); cuDNN stays in its fast non-deterministic mode."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def amp_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """bf16 on GPUs that support it, fp16 on older ones, None (fp32) on CPU/MPS."""
    if not enabled or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def analysis_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    """Analysis (embeddings, probabilities for ranking) on a CPU with native bf16 (AVX-512 BF16 / AMX) runs in
    bf16: 2.9x the fp32 throughput of compact_cnn on this 2-core VM, and the queue order, map and kNN graph do
    not need fp32's last digits. Evaluation, export and training keep their own precision. MEDSSL_ANALYSIS_FP32=1
    turns it off."""
    import os

    if device.type == "cpu" and os.environ.get("MEDSSL_ANALYSIS_FP32") != "1" \
            and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.bfloat16
    return amp_dtype(device, amp)


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def rng_state() -> dict[str, Any]:
    """All global RNG states as plain tensors/lists, so checkpoints load with weights_only=True."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": _to_lists(random.getstate()),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_lists(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_to_lists(v) for v in value]
    return value
