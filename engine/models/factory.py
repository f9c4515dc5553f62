"""create_model: a registered classifier backbone by name (the backbone modules register themselves)."""
from __future__ import annotations

from engine.models import small_cnn, torchvision_backbones  # noqa: F401  (registration)
from engine.models.classifier import MODELS, Classifier


def create_model(name: str, num_classes: int, in_chans: int = 1, pretrained: bool = False) -> Classifier:
    """Build a registered backbone by name (compact_cnn, resnet18_small, densenet121)."""
    return MODELS[name](num_classes=num_classes, in_chans=in_chans, pretrained=pretrained)
