"""MODELS registry and the one classifier contract: forward -> {'logits': (B, C), 'feat': (B, D)}."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from engine.core.registry import Registry

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
