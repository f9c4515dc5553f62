"""MC-dropout: N stochastic forward passes with only the Dropout modules active.

Why only dropout: BatchNorm in train mode would normalise with each batch's statistics (and update its
running stats), so the spread across passes would measure batch composition, not model uncertainty.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from engine.core.device import autocast
from engine.loaders.transforms import ViewMaker
from engine.methods.losses import probabilities

DROPOUT_TYPES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)


def has_dropout(model: nn.Module) -> bool:
    """True when some dropout module would actually drop units (p > 0); p = 0 gives identical passes."""
    return any(isinstance(m, DROPOUT_TYPES) and m.p > 0 for m in model.modules())


@contextmanager
def dropout_active(model: nn.Module) -> Iterator[nn.Module]:
    """Everything in eval mode except the dropout modules; every module's own mode is restored after."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    for m in model.modules():
        if isinstance(m, DROPOUT_TYPES):
            m.train()
    try:
        yield model
    finally:
        for m, mode in modes:
            m.training = mode


def _rng_devices(device: torch.device) -> list[int]:
    """CUDA generators to fork, so seeding here never shifts the caller's CUDA random stream."""
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


@torch.inference_mode()
def mc_dropout_samples(model: nn.Module, images: torch.Tensor, views: ViewMaker, task: str, passes: int,
                       seed: int = 0, batch_size: int = 256, dtype: torch.dtype | None = None) -> np.ndarray:
    """uint8 images (N, C, H, W) -> class probabilities of each pass, (passes, N, classes) float32.

    Batched like predict_tensor: every chunk is normalised once and run `passes` times. The global RNG is
    forked and seeded, so one seed (and batch size) gives the same samples and the caller's RNG is untouched.
    """
    if passes < 1:
        raise ValueError(f"passes must be >= 1, got {passes}")
    device = next(model.parameters()).device
    chunks: list[torch.Tensor] = []
    with torch.random.fork_rng(devices=_rng_devices(device)), dropout_active(model):
        torch.manual_seed(seed)
        for chunk in images.split(batch_size):
            x = views.plain(chunk.to(device, non_blocking=True))
            runs = []
            for _ in range(passes):
                with autocast(device, dtype):
                    logits = model(x)["logits"]
                runs.append(probabilities(logits.float(), task).cpu())
            chunks.append(torch.stack(runs))   # (passes, B, classes)
    if not chunks:
        n_cls = model.fc.out_features if hasattr(model, "fc") else 0
        return np.zeros((passes, 0, n_cls), np.float32)
    return torch.cat(chunks, dim=1).numpy()


def mc_variance(prob_samples: np.ndarray) -> np.ndarray:
    """(T, N, C) MC-dropout samples -> (N,) mean over classes of the variance over the T passes."""
    s = np.asarray(prob_samples, dtype=np.float64)
    if s.ndim != 3:
        raise ValueError(f"prob_samples must be (T, N, C), got shape {s.shape}")
    return np.nan_to_num(s.var(axis=0).mean(axis=1)).astype(np.float32)
