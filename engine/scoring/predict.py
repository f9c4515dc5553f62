"""Eval-mode predictions over a uint8 image tensor, for validation during training and for inference.

Both the training loop (best-val selection) and the inference stage call these, so they live below both.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from engine.loaders.transforms import ViewMaker
from engine.methods.losses import probabilities
from engine.scoring.batched import eval_outputs


@torch.inference_mode()
def predict_tensor(model: nn.Module, images: torch.Tensor, views: ViewMaker, task: str, batch_size: int = 512,
                   dtype: torch.dtype | None = None) -> tuple[np.ndarray, np.ndarray]:
    """images (N, C, H, W) uint8 on the model's device -> probs (N, C), features (N, D), both float32."""
    kept = eval_outputs(model, images, views, batch_size, dtype,
                        lambda out: (probabilities(out["logits"].float(), task).cpu(), out["feat"].float().cpu()))
    probs, feats = [p for p, _ in kept], [f for _, f in kept]
    n_cls = model.fc.out_features if hasattr(model, "fc") else 0
    if not probs:
        return np.zeros((0, n_cls), np.float32), np.zeros((0, 0), np.float32)
    return torch.cat(probs).numpy(), torch.cat(feats).numpy()


@torch.inference_mode()
def predict_seg_tensor(model: nn.Module, images: torch.Tensor, views: ViewMaker, batch_size: int = 64,
                       dtype: torch.dtype | None = None) -> tuple[np.ndarray, np.ndarray]:
    """images (N, C, H, W) uint8 -> softmax probabilities (N, K, H, W) float32, pooled features (N, D)."""
    kept = eval_outputs(model, images, views, batch_size, dtype,
                        lambda out: (torch.softmax(out["logits"].float(), dim=1).cpu(),
                                     out["feat"].float().mean(dim=(2, 3)).cpu()))
    probs, feats = [p for p, _ in kept], [f for _, f in kept]
    if not probs:
        return np.zeros((0, model.num_classes, *images.shape[-2:]), np.float32), np.zeros((0, 0), np.float32)
    return torch.cat(probs).numpy(), torch.cat(feats).numpy()
