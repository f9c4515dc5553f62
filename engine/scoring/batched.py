"""One batched inference loop for classification and segmentation: eval mode, chunks, autocast, restore."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from engine.core.device import autocast
from engine.loaders.transforms import ViewMaker


@torch.inference_mode()
def eval_outputs(model: nn.Module, images: torch.Tensor, views: ViewMaker, batch_size: int,
                 dtype: torch.dtype | None, head: Callable[[dict[str, torch.Tensor]], Any]) -> list[Any]:
    """`head(model output)` for each chunk of uint8 images (N, C, H, W), the model in eval mode meanwhile
    (its previous mode restored after); `head` turns the raw output into what the caller keeps on the CPU."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    kept = []
    for chunk in images.split(batch_size):
        with autocast(device, dtype):
            out = model(views.plain(chunk.to(device, non_blocking=True)))
        kept.append(head(out))
    model.train(was_training)
    return kept
