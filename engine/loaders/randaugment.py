"""RandAugment-style strong view on batched float tensors in [0, 1] (FixMatch's strong branch), ours.

Every image gets `n_ops` operations drawn from the list below, each at a random magnitude up to
`magnitude` (0-1 of the op's range), then one cutout square. Ops run on the whole batch and are kept per
image with a mask, so there is no Python loop over images; the geometric ops share one grid_sample.
Ranges follow FixMatch's RandAugment (Sohn et al. 2020, Table 12) where they are meaningful for grey-scale
medical images; colour ops (hue, saturation) are left out.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

PIXEL_OPS = ("identity", "autocontrast", "brightness", "contrast", "gamma", "posterize", "solarize", "sharpness")
GEOMETRIC_OPS = ("rotate", "shear_x", "shear_y", "translate_x", "translate_y")
OPS = PIXEL_OPS + GEOMETRIC_OPS


def rand_augment(x: torch.Tensor, gen: torch.Generator, n_ops: int = 2, magnitude: float = 1.0,
                 cutout: float = 0.5) -> torch.Tensor:
    """x (B, C, H, W) in [0, 1] -> augmented copy in [0, 1]."""
    n = x.shape[0]
    if n == 0:
        return x
    dev = x.device
    chosen = torch.rand(n, len(OPS), generator=gen, device=dev).argsort(dim=1)[:, :n_ops]
    picked = torch.zeros(n, len(OPS), dtype=torch.bool, device=dev).scatter_(1, chosen, True)  # (B, K)
    level = torch.rand(n, len(OPS), generator=gen, device=dev) * magnitude  # (B, K) in [0, magnitude]
    sign = torch.where(torch.rand(n, len(OPS), generator=gen, device=dev) < 0.5, -1.0, 1.0)
    for k, name in enumerate(PIXEL_OPS):
        if name == "identity" or not bool(picked[:, k].any()):
            continue
        out = _PIXEL[name](x, level[:, k].view(n, 1, 1, 1), sign[:, k].view(n, 1, 1, 1))
        x = torch.where(picked[:, k].view(n, 1, 1, 1), out, x)
    x = _geometric(x, picked[:, len(PIXEL_OPS):], level[:, len(PIXEL_OPS):] * sign[:, len(PIXEL_OPS):])
    return _cutout(x.clamp(0.0, 1.0), gen, cutout)


def _autocontrast(x: torch.Tensor, level: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    low = x.amin(dim=(2, 3), keepdim=True)
    high = x.amax(dim=(2, 3), keepdim=True)
    return (x - low) / (high - low).clamp(min=1e-3)


def _brightness(x: torch.Tensor, level: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    return x * (1.0 + 0.9 * level * sign)  # factor 0.1-1.9


def _contrast(x: torch.Tensor, level: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (1.0 + 0.9 * level * sign) + mean


def _gamma(x: torch.Tensor, level: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    return x.clamp(min=1e-6) ** torch.exp(math.log(2.0) * level * sign)  # gamma 0.5-2


def _posterize(x: torch.Tensor, level: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    steps = 2.0 ** (8.0 - 4.0 * level).round()  # 8 down to 4 bits
    return torch.floor(x * (steps - 1) + 0.5) / (steps - 1)


def _solarize(x: torch.Tensor, level: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    threshold = 1.0 - level  # 1 (nothing) down to 0 (everything inverted)
    return torch.where(x >= threshold, 1.0 - x, x)


def _sharpness(x: torch.Tensor, level: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    channels = x.shape[1]
    kernel = torch.tensor([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]], device=x.device) / 13.0
    blurred = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel.expand(channels, 1, 3, 3),
                       groups=channels)
    return blurred + (x - blurred) * (1.0 + 0.9 * level * sign)  # blur (factor < 1) or sharpen (> 1)


_PIXEL: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "autocontrast": _autocontrast, "brightness": _brightness, "contrast": _contrast, "gamma": _gamma,
    "posterize": _posterize, "solarize": _solarize, "sharpness": _sharpness}


def _geometric(x: torch.Tensor, picked: torch.Tensor, signed_level: torch.Tensor) -> torch.Tensor:
    """Rotate ±30°, shear ±0.3, translate ±30 % — the picked ones per image, composed into one affine map."""
    if not bool(picked.any()):
        return x
    n = x.shape[0]
    amount = signed_level * picked  # (B, 5), 0 where an op was not picked
    angle = amount[:, 0] * math.radians(30.0)
    shear_x, shear_y = amount[:, 1] * 0.3, amount[:, 2] * 0.3
    shift = amount[:, 3:5] * 0.3 * 2.0  # grid units span [-1, 1]
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotate = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)  # (B, 2, 2)
    one = torch.ones(n, device=x.device)
    shear = torch.stack([torch.stack([one, shear_x], 1), torch.stack([shear_y, one], 1)], 1)
    theta = torch.cat([rotate @ shear, shift.unsqueeze(2)], dim=2)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    warped = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return torch.where(picked.any(dim=1).view(n, 1, 1, 1), warped, x)


def _cutout(x: torch.Tensor, gen: torch.Generator, max_frac: float) -> torch.Tensor:
    """One grey square per image, side up to `max_frac` of the image side (FixMatch: cutout always on)."""
    n, _, h, w = x.shape
    if max_frac <= 0:
        return x
    dev = x.device
    side = (torch.rand(n, generator=gen, device=dev) * max_frac * min(h, w)).long().clamp(min=1)
    cy = (torch.rand(n, generator=gen, device=dev) * h).long()
    cx = (torch.rand(n, generator=gen, device=dev) * w).long()
    rows = torch.arange(h, device=dev).view(1, h, 1)
    cols = torch.arange(w, device=dev).view(1, 1, w)
    half = (side // 2).view(n, 1, 1)
    inside = ((rows - cy.view(n, 1, 1)).abs() <= half) & ((cols - cx.view(n, 1, 1)).abs() <= half)
    return x.masked_fill(inside.unsqueeze(1), 0.5)
