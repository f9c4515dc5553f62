"""Freshly loaded models made fast for inference: BatchNorm folded, then channels-last on the CPU.

Why channels-last: oneDNN's CPU convolutions run NHWC kernels; on a contiguous (NCHW) model every conv pays
layout reorders. Measured on the 2-core dev VM, one thread, BatchNorm already folded: compact_cnn, 256 images
at 64 px, 0.92 s -> 0.51 s per batch; unet_small, 32 images at 128 px, 1.11 s -> 0.76 s; logits equal to
6e-8. Converting the weights is enough: a conv whose weight is channels-last gives channels-last outputs for
contiguous inputs, so callers pass images as before. Only the analysis and inference jobs' own copies are
converted; training and export keep their layout. MEDSSL_CHANNELS_LAST=0 turns it off (the analysis
benchmark's baseline). On CUDA the layout is left alone (not measured here).
"""
from __future__ import annotations

import os

import torch
from torch import nn

from engine.inference.fold_bn import fold_for_inference


def channels_last_enabled() -> bool:
    return os.environ.get("MEDSSL_CHANNELS_LAST", "1") != "0"


def prepare_for_inference(models: dict[str, nn.Module]) -> None:
    """Fold each eval-mode model's BatchNorm (unless MEDSSL_FOLD_BN=0), then, on the CPU, store its weights
    channels-last (unless MEDSSL_CHANNELS_LAST=0). In place; the models must be inference-only copies."""
    fold_for_inference(models)
    if not channels_last_enabled():
        return
    for model in models.values():
        first = next(model.parameters(), None)
        if first is not None and first.device.type == "cpu":
            model.to(memory_format=torch.channels_last)
