"""Segmentation views: the classification ViewMaker's own augmentation applied to image AND mask together.

The mask travels through the same `_affine` call as the image, as one-hot channels, so both get the exact
same rotation/scale/shift/flip; argmax brings it back to class indices. Pixels warped in from outside the
frame (coverage < 0.5) become -1 (ignored by the losses). Intensity changes and cutout touch the image only.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.loaders.transforms import ViewMaker, _affine, _erase, _intensity

IGNORE = -1  # mask value the segmentation losses skip


class PairedViews:
    """Geometry shared by image and mask (supervised) or by the student and teacher views (SSL)."""

    def __init__(self, views: ViewMaker, num_classes: int) -> None:
        self.views, self.num_classes = views, num_classes

    def _warp(self, images: torch.Tensor, masks: torch.Tensor | None, gen: torch.Generator,
              strong_geometry: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """uint8 (B, C, H, W) [+ long (B, H, W)] -> float [0, 1] images and warped masks, one shared draw."""
        a = self.views.aug
        x = images.float() / 255.0
        chans = x.shape[1]
        if masks is not None:
            valid = (masks >= 0).unsqueeze(1)
            onehot = F.one_hot(masks.clamp(min=0), self.num_classes).permute(0, 3, 1, 2).float() * valid
            x = torch.cat([x, onehot], dim=1)  # (B, C + K, H, W)
        if strong_geometry:
            x = _affine(x, gen, a.strong_rotate_deg, a.strong_translate, a.strong_scale, a.hflip)
        else:
            x = _affine(x, gen, a.weak_rotate_deg, a.weak_translate, a.weak_scale, a.hflip)
        if masks is None:
            return x, None
        soft = x[:, chans:]
        warped = soft.argmax(dim=1).masked_fill(soft.sum(dim=1) < 0.5, IGNORE)  # (B, H, W)
        return x[:, :chans], warped

    def weak(self, images: torch.Tensor, masks: torch.Tensor | None, gen: torch.Generator
             ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Labeled training view: weak geometry on image and mask, normalised image."""
        x, warped = self._warp(images, masks, gen)
        return self.views._normalise(x), warped

    def strong_intensity(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        a = self.views.aug
        x = _intensity(x.clone(), gen, a.strong_brightness, a.strong_contrast, a.strong_noise_std)
        return _erase(x, gen, a.strong_erase_prob, a.strong_erase_frac)

    def two_views(self, images: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(student strong, teacher weak) of the same images with ONE weak geometric draw, so pixels align."""
        x, _ = self._warp(images, None, gen)
        return self.views._normalise(self.strong_intensity(x, gen)), self.views._normalise(x)

    def weak_unlabeled(self, images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Weak geometry only, [0, 1] floats (not normalised): the base every UniMatch view is made from."""
        return self._warp(images, None, gen)[0]

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return self.views._normalise(x)
