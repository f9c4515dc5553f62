"""Read a .npz bundle source: `images` plus optional labels, masks, names, groups and extras.

Split out of sources.py; a bundle is loaded once and items are views into it, and a bad bundle
becomes a single Rejected for the file rather than an exception.
"""
from __future__ import annotations

import math
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from engine.data.io import DecodedImage, canonical_pixels, normalize_mask
from engine.data.source_types import Label, Rejected, SourceItem


class _BadNpz(Exception):
    """The bundle as a whole is unusable; becomes one Rejected for the file."""


def _per_item(z, key: str, n: int) -> list | None:
    if key not in z.files:
        return None
    values = z[key]
    if len(values) != n:
        raise _BadNpz(f"npz '{key}' has {len(values)} entries but 'images' has {n}")
    return values.tolist()


def _npz_labels(z, n: int) -> tuple[list[Label], bool]:
    if "labels" not in z.files:
        return [None] * n, False
    labels = z["labels"]
    if len(labels) != n:
        raise _BadNpz(f"npz 'labels' has {len(labels)} entries but 'images' has {n}")
    if labels.ndim == 2:  # multi-label 0/1 matrix -> positive class indices
        return [np.flatnonzero(row > 0.5).tolist() for row in labels], True
    if labels.dtype.kind in "US":
        return [str(v) or None for v in labels.tolist()], False
    if labels.dtype.kind == "f":
        return [None if math.isnan(v) or v < 0 else int(v) for v in labels.tolist()], False
    return [None if v < 0 else int(v) for v in labels.tolist()], False


def iter_npz(path: Path) -> Iterator[SourceItem | Rejected]:
    """Load the bundle once; items are views into it (fast: no per-item decoding or copying)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if "images" not in z.files:
                raise _BadNpz("npz has no 'images' array")
            images = z["images"]
            if images.ndim == 4 and images.shape[-1] in (1, 3, 4):
                images = images[..., 0] if images.shape[-1] == 1 else images[..., :3]
            elif images.ndim != 3:
                raise _BadNpz(f"npz 'images' must be (N,H,W) or (N,H,W,3), got {images.shape}")
            images = np.ascontiguousarray(canonical_pixels(images))
            n = len(images)
            labels, _ = _npz_labels(z, n)
            masks = z["masks"] if "masks" in z.files else None
            if masks is not None:
                if masks.shape != images.shape[:3]:
                    mh, mw = masks.shape[1:3] if masks.ndim >= 3 else ("?", "?")
                    raise _BadNpz(f"mask size {mw}x{mh} does not match image size "
                                  f"{images.shape[2]}x{images.shape[1]}" if len(masks) == n
                                  else f"npz 'masks' has {len(masks)} entries but 'images' has {n}")
                masks = normalize_mask(masks.reshape(-1, masks.shape[-1])).reshape(masks.shape)
            names, groups = _per_item(z, "names", n), _per_item(z, "groups", n)
            extras = {}  # other per-item scalars (e.g. labels_subtype) ride along in the metadata
            for key in sorted(set(z.files) - {"images", "labels", "masks", "names", "groups"}):
                values = z[key]
                if values.ndim == 1 and len(values) == n and values.dtype.kind in "biufUS":
                    extras[key] = values.tolist()
    except _BadNpz as exc:
        yield Rejected(path.name, str(exc))
        return
    except Exception as exc:  # noqa: BLE001 -- zipfile/numpy raise many types for a corrupt bundle
        yield Rejected(path.name, f"corrupt or unreadable npz ({type(exc).__name__}: {exc})")
        return
    bit_depth = images.dtype.itemsize * 8
    for i in range(n):
        meta = {"format": "npz", "bit_depth": bit_depth, "index": i}
        meta.update((k, v[i]) for k, v in extras.items())
        name = str(names[i]) if names is not None else f"{path.stem}[{i}]"
        group = (str(groups[i]) or None) if groups is not None else None
        mask = masks[i] if masks is not None else None
        yield SourceItem(name, DecodedImage(images[i], metadata=meta), labels[i], mask, group, None)


def npz_header(path: Path, member: str) -> tuple[int, ...] | None:
    """Shape of one array in an .npz from its header, without loading the data."""
    try:
        with zipfile.ZipFile(path) as zf, zf.open(member + ".npy") as fh:
            version = np.lib.format.read_magic(fh)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            return tuple(reader(fh)[0])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
