"""compact_cnn: the CPU default, four conv blocks (32-256 wide), fast enough for interactive training.

`compact_cnn_2conv` has two 3×3 convs per block, as the plain PyTorch loop that beat our supervised model by
3.5 AUC points on a 4-class set (issue 16 §0). It costs more per step and trained slower at equal steps in a
first look (DECISIONS: compact_cnn one conv per block), so it is an option, not the default.
"""
from __future__ import annotations

import torch
from torch import nn

from engine.models.classifier import MODELS, Classifier


def _block(cin: int, cout: int, pool: bool, convs: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                   nn.ReLU(inplace=True)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class CompactCNN(Classifier):
    """conv-BN-ReLU blocks, each halving the resolution except the last; 28-128 px inputs."""

    def __init__(self, num_classes: int, in_chans: int = 1, widths: tuple[int, ...] = (32, 64, 128, 256),
                 drop_rate: float = 0.1, convs_per_block: int = 1) -> None:
        super().__init__(widths[-1], num_classes, drop_rate)
        chans = (in_chans, *widths)
        self.features = nn.Sequential(*[_block(chans[i], chans[i + 1], i < len(widths) - 1, convs_per_block)
                                         for i in range(len(widths))])
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (B, 256, H/8, W/8)


def _no_weights(pretrained: bool) -> None:
    if pretrained:
        import logging

        logging.getLogger(__name__).info("compact_cnn has no pretrained weights; random init")


@MODELS.register("compact_cnn")
def compact_cnn(num_classes: int, in_chans: int = 1, pretrained: bool = False) -> CompactCNN:
    _no_weights(pretrained)
    return CompactCNN(num_classes, in_chans, convs_per_block=1)


@MODELS.register("compact_cnn_2conv")
def compact_cnn_2conv(num_classes: int, in_chans: int = 1, pretrained: bool = False) -> CompactCNN:
    _no_weights(pretrained)
    return CompactCNN(num_classes, in_chans, convs_per_block=2)
