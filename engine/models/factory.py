"""MODELS registry and the one classifier contract: forward -> {'logits': (B, C), 'feat': (B, D)}."""
from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from torch import nn

from engine.registry import Registry

log = logging.getLogger(__name__)

MODELS: Registry[Callable[..., Classifier]] = Registry("model")


class Classifier(nn.Module):
    """Backbone (forward_features -> feature map) + pooled head; the pre-logit vector is the embedding."""

    num_features: int

    def __init__(self, num_features: int, num_classes: int, drop_rate: float) -> None:
        super().__init__()
        self.num_features = num_features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head_drop = nn.Dropout(drop_rate)  # SRC-MT taps the pooled feature after dropout (P4)
        self.fc = nn.Linear(num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # (B, D, h, w)
        raise NotImplementedError

    def forward_head(self, fmap: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        feat = self.head_drop(self.pool(fmap).flatten(1))  # (B, D)
        return feat if pre_logits else self.fc(feat)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feat = self.forward_head(self.forward_features(x), pre_logits=True)
        return {"logits": self.fc(feat), "feat": feat}


def create_model(name: str, num_classes: int, in_chans: int = 1, pretrained: bool = False) -> Classifier:
    """Build a registered backbone by name (compact_cnn, resnet18_small, densenet121)."""
    import engine.models  # noqa: F401  (fills MODELS on first use)

    return MODELS[name](num_classes=num_classes, in_chans=in_chans, pretrained=pretrained)


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
