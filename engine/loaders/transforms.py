"""Weak and strong augmentation done batched on uint8 tensors (on the training device), not per image."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from engine.core.config import AugConfig
from engine.loaders.randaugment import rand_augment


class ViewMaker:
    """Turns a uint8 batch (B, C, H, W) into normalised float views; randomness from an explicit generator."""

    def __init__(self, aug: AugConfig, mean: float | tuple[float, ...], std: float | tuple[float, ...]) -> None:
        self.aug = aug
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)  # (1, 1 or C, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        if self.mean.device != x.device:
            self.mean, self.std = self.mean.to(x.device), self.std.to(x.device)
        return (x - self.mean) / self.std

    def plain(self, images: torch.Tensor) -> torch.Tensor:
        """Evaluation view: scale to [0, 1] and normalise; no randomness."""
        return self._normalise(images.float() / 255.0)

    def flipped(self, images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Mirror only (when hflip is on), per sample: the plain reference loop's whole augmentation."""
        x = images.float() / 255.0
        if self.aug.hflip and x.shape[0]:
            flip = torch.rand(x.shape[0], generator=gen, device=x.device) < 0.5
            x = torch.where(flip.view(-1, *([1] * (x.dim() - 1))), x.flip(-1), x)
        return self._normalise(x)

    def weak(self, images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        a = self.aug
        x = _affine(images.float() / 255.0, gen, a.weak_rotate_deg, a.weak_translate, a.weak_scale, a.hflip)
        return self._normalise(x)

    def strong(self, images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        a = self.aug
        x = _affine(images.float() / 255.0, gen, a.strong_rotate_deg, a.strong_translate, a.strong_scale,
                    a.hflip)
        x = _intensity(x, gen, a.strong_brightness, a.strong_contrast, a.strong_noise_std)
        x = _erase(x, gen, a.strong_erase_prob, a.strong_erase_frac)
        return self._normalise(x)

    def randaugment(self, images: torch.Tensor, gen: torch.Generator, n_ops: int = 2,
                    magnitude: float = 1.0) -> torch.Tensor:
        """FixMatch's strong view: a weak mirror, then RandAugment-style ops and one cutout square."""
        x = _affine(images.float() / 255.0, gen, 0.0, 0.0, (1.0, 1.0), self.aug.hflip)
        return self._normalise(rand_augment(x, gen, n_ops, magnitude))

    def make(self, kind: str, images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if kind == "randaugment":
            return self.randaugment(images, gen)
        return self.strong(images, gen) if kind == "strong" else self.weak(images, gen)


def _uniform(gen: torch.Generator, n: int, low: float, high: float, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device) * (high - low) + low


def _affine(x: torch.Tensor, gen: torch.Generator, rotate_deg: float, translate: float,
            scale: tuple[float, float], hflip: bool) -> torch.Tensor:
    """Per-sample rotation, translation, scale and optional mirror via one grid_sample call."""
    n, dev = x.shape[0], x.device
    if n == 0:
        return x
    angle = _uniform(gen, n, -rotate_deg, rotate_deg, dev) * (math.pi / 180.0)
    zoom = _uniform(gen, n, scale[0], scale[1], dev)
    shift = _uniform(gen, 2 * n, -translate, translate, dev).view(n, 2) * 2.0  # grid units span [-1, 1]
    flip = torch.where(torch.rand(n, generator=gen, device=dev) < 0.5, -1.0, 1.0) if hflip else \
        torch.ones(n, device=dev)
    if rotate_deg == 0 and translate == 0 and tuple(scale) == (1.0, 1.0):  # mirror only: no resampling
        return torch.where((flip < 0).view(-1, *([1] * (x.dim() - 1))), x.flip(-1), x)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], 1),
                         torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _intensity(x: torch.Tensor, gen: torch.Generator, brightness: float, contrast: float,
               noise_std: float) -> torch.Tensor:
    """Contrast around each image's mean, additive brightness, Gaussian noise; clamped to [0, 1]."""
    n, dev = x.shape[0], x.device
    if n == 0:
        return x
    c = _uniform(gen, n, 1.0 - contrast, 1.0 + contrast, dev).view(n, 1, 1, 1)
    b = _uniform(gen, n, -brightness, brightness, dev).view(n, 1, 1, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * c + mean + b
    if noise_std > 0:
        x = x + torch.randn(x.shape, generator=gen, device=dev) * noise_std
    return x.clamp_(0.0, 1.0)


def _erase(x: torch.Tensor, gen: torch.Generator, prob: float, max_frac: float) -> torch.Tensor:
    """Cutout: zero one random rectangle per selected image (mask built by broadcasting, no loop)."""
    n, _, h, w = x.shape
    if n == 0 or prob <= 0:
        return x
    dev = x.device
    keep = torch.rand(n, generator=gen, device=dev) >= prob
    eh = (_uniform(gen, n, 0.1, max_frac, dev) * h).long().clamp(min=1)
    ew = (_uniform(gen, n, 0.1, max_frac, dev) * w).long().clamp(min=1)
    y0 = (torch.rand(n, generator=gen, device=dev) * (h - eh + 1)).long()
    x0 = (torch.rand(n, generator=gen, device=dev) * (w - ew + 1)).long()
    rows = torch.arange(h, device=dev).view(1, h, 1)
    cols = torch.arange(w, device=dev).view(1, 1, w)
    inside = ((rows >= y0.view(n, 1, 1)) & (rows < (y0 + eh).view(n, 1, 1)) &
              (cols >= x0.view(n, 1, 1)) & (cols < (x0 + ew).view(n, 1, 1)))  # (B, H, W)
    inside &= ~keep.view(n, 1, 1)
    return x.masked_fill(inside.unsqueeze(1), 0.0)
