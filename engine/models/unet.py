"""Segmentation networks: SEG_MODELS registry + create_seg_model (CONTRACTS §1, METHODS §4.1).

The one segmentation contract: forward(x) -> {'logits': (B, K, H, W), 'feat': (B, D, h, w), 'proj': (B, d, h, w)}
with 'feat' the decoder stage at 1/4 resolution (SECL's default tap) and 'proj' its per-pixel L2-normalised
projection. The encoder and decoder are separate submodules so SECL can average the encoder alone.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from engine.core.registry import Registry

SEG_MODELS: Registry[Callable[..., SegNet]] = Registry("segmentation model")


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Encoder(nn.Module):
    """Five conv stages, four 2x max-pool down-samplings; returns every stage (skips + bottleneck)."""

    def __init__(self, in_chans: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        self.stages = nn.ModuleList(_double_conv(cin, cout) for cin, cout in zip((in_chans, *widths[:-1]), widths))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        skips = []
        for i, stage in enumerate(self.stages):
            x = stage(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        return skips  # resolutions 1, 1/2, 1/4, 1/8, 1/16


class Decoder(nn.Module):
    """Bilinear up-sampling + skip concatenation + double conv; exposes the 1/4-resolution stage."""

    def __init__(self, widths: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        rev = widths[::-1]  # bottleneck first
        self.reduce = nn.ModuleList(nn.Conv2d(rev[i], rev[i + 1], 1) for i in range(len(rev) - 1))
        self.stages = nn.ModuleList(_double_conv(2 * rev[i + 1], rev[i + 1]) for i in range(len(rev) - 1))
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        self.tap = len(rev) - 4  # decoder stages run 1/8, 1/4, 1/2, 1: index of the 1/4 stage

    def forward(self, skips: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x, tapped = skips[-1], skips[-1]
        for i, (reduce, stage) in enumerate(zip(self.reduce, self.stages)):
            skip = skips[-2 - i]
            x = F.interpolate(reduce(x), size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = stage(torch.cat([x, skip], dim=1))
            if i == self.tap:
                tapped = x
        return self.head(x), tapped


class ProjectionHead(nn.Module):
    """1x1 conv -> 256, ReLU, 1x1 conv -> d; unit length per pixel (METHODS §4.1)."""

    def __init__(self, cin: int, hidden: int = 256, dim: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(cin, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, dim, 1))

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(feat), dim=1)  # (B, d, h, w)


class SegNet(nn.Module):
    """2-D U-Net (BN + ReLU) with a projection head on the decoder's 1/4-resolution feature."""

    def __init__(self, num_classes: int, in_chans: int, base_width: int = 32, proj_dim: int = 128) -> None:
        super().__init__()
        widths = tuple(base_width * 2 ** i for i in range(5))
        self.num_classes = num_classes
        self.encoder = Encoder(in_chans, widths)
        self.decoder = Decoder(widths, num_classes)
        self.projector = ProjectionHead(widths[2], dim=proj_dim)

    def forward_decoder(self, skips: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        logits, feat = self.decoder(skips)
        return {"logits": logits, "feat": feat, "proj": self.projector(feat)}

    def forward(self, x: torch.Tensor, fp_dropout: float = 0.0, fp_rows: tuple[int, int] | None = None
                ) -> dict[str, torch.Tensor]:
        """fp_dropout > 0: also 'fp_logits', the decoder on channel-dropped encoder features of rows
        [fp_rows[0], fp_rows[1]) (UniMatch's feature-perturbation stream), in the same forward (one DDP call)."""
        skips = self.encoder(x)
        out = self.forward_decoder(skips)
        if fp_dropout > 0 and fp_rows is not None:
            lo, hi = fp_rows
            out["fp_logits"] = self.decoder([F.dropout2d(s[lo:hi], fp_dropout, self.training) for s in skips])[0]
        return out


@SEG_MODELS.register("unet")
def unet(num_classes: int, in_chans: int = 1, base_width: int = 32) -> SegNet:
    """METHODS §4.1: four down-samplings, base width 32 (GPU scale; 7.8 M parameters)."""
    return SegNet(num_classes, in_chans, base_width)


@SEG_MODELS.register("unet_small")
def unet_small(num_classes: int, in_chans: int = 1, base_width: int = 16) -> SegNet:
    """The CPU default: the same U-Net at base width 16 (~4x fewer FLOPs), so a PH2 cell fits 10 min."""
    return SegNet(num_classes, in_chans, base_width)


def create_seg_model(name: str = "unet", num_classes: int = 2, in_chans: int = 1, **kwargs) -> SegNet:
    """Build a registered segmentation network by name (unet, unet_small)."""
    return SEG_MODELS[name](num_classes=num_classes, in_chans=in_chans, **kwargs)
