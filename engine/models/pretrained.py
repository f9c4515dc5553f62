"""ImageNet weights for torchvision backbones, with an offline fallback to random init (never a partial load)."""
from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from torch import nn

log = logging.getLogger("engine.models.factory")


def adapt_first_conv(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """RGB conv weights for another channel count: sum over RGB for grayscale, tile-and-rescale otherwise."""
    if in_chans == weight.shape[1]:
        return weight
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    reps = -(-in_chans // weight.shape[1])
    return weight.repeat(1, reps, 1, 1)[:, :in_chans] * (weight.shape[1] / in_chans)


def load_pretrained(model: nn.Module, fetch: Callable[[], dict], first_conv: str, in_chans: int,
                    skip_prefixes: tuple[str, ...]) -> bool:
    """Load ImageNet weights; on ANY failure (offline, no cache) log why and keep the random init."""
    try:
        state = fetch()
    except Exception as exc:  # noqa: BLE001 - offline installs must still train
        log.warning("pretrained weights unavailable (%s: %s); using random init", type(exc).__name__, exc)
        return False
    state = {k: v for k, v in state.items() if not k.startswith(skip_prefixes)}
    if first_conv in state:
        state[first_conv] = adapt_first_conv(state[first_conv], in_chans)
        if state[first_conv].shape != model.state_dict()[first_conv].shape:
            log.info("first conv %s keeps its random init (shape differs)", first_conv)
            del state[first_conv]
    result = model.load_state_dict(state, strict=False)
    backbone_missing = [k for k in result.missing_keys if not k.startswith(("fc.", first_conv))]
    if backbone_missing or result.unexpected_keys:  # P10: never a silent partial load
        raise RuntimeError(f"pretrained load mismatch: missing={backbone_missing} "
                           f"unexpected={result.unexpected_keys}")
    log.info("loaded ImageNet weights; re-initialised: %s", result.missing_keys)
    return True
