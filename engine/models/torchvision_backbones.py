"""torchvision backbones behind the same contract: resnet18_small (28-128 px) and densenet121."""
from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.classifier import MODELS, Classifier
from engine.models.pretrained import load_pretrained


class ResNet18Small(Classifier):
    """ResNet-18 with a stride-1 3x3 stem and no max-pool, so 28-128 px images keep spatial detail."""

    def __init__(self, num_classes: int, in_chans: int = 1, drop_rate: float = 0.0) -> None:
        from torchvision.models import resnet18

        super().__init__(512, num_classes, drop_rate)
        net = resnet18(weights=None)
        net.conv1 = nn.Conv2d(in_chans, 64, 3, stride=1, padding=1, bias=False)
        self.conv1, self.bn1 = net.conv1, net.bn1
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, 512, H/8, W/8)


class DenseNet121(Classifier):
    """torchvision DenseNet-121 (the papers' backbone); dropout 0.2 on the pooled 1024-d feature as SRC-MT."""

    def __init__(self, num_classes: int, in_chans: int = 1, drop_rate: float = 0.2) -> None:
        from torchvision.models import densenet121

        super().__init__(1024, num_classes, drop_rate)
        net = densenet121(weights=None)
        if in_chans != 3:
            net.features.conv0 = nn.Conv2d(in_chans, 64, 7, stride=2, padding=3, bias=False)
        self.features = net.features

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.features(x))  # (B, 1024, H/32, W/32)


@MODELS.register("resnet18_small")
def resnet18_small(num_classes: int, in_chans: int = 1, pretrained: bool = False) -> ResNet18Small:
    model = ResNet18Small(num_classes, in_chans)
    if pretrained:  # the 7x7 ImageNet stem does not fit the 3x3 stem; it stays random
        load_pretrained(model, _weights("ResNet18_Weights"), "conv1.weight", in_chans, ("fc.",))
    return model


@MODELS.register("densenet121")
def densenet121(num_classes: int, in_chans: int = 1, pretrained: bool = False) -> DenseNet121:
    model = DenseNet121(num_classes, in_chans)
    if pretrained:
        load_pretrained(model, _weights("DenseNet121_Weights"), "features.conv0.weight", in_chans,
                        ("classifier.",))
    return model


# torchvision's DenseNet checkpoints use legacy names ('norm.1.weight' for 'norm1.weight')
_LEGACY_DENSENET = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def _weights(enum_name: str):
    """A deferred fetch of torchvision's ImageNet weights (downloads or reads the torch hub cache)."""

    def fetch() -> dict:
        import torchvision.models as tvm

        state = getattr(tvm, enum_name).IMAGENET1K_V1.get_state_dict(progress=False)
        return {_LEGACY_DENSENET.sub(r"\1\2", k): v for k, v in state.items()}

    return fetch
