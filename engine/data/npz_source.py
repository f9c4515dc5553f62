"""Read a .npz bundle source: `images` plus optional labels, masks, names, groups and extras.

Split out of sources.py; a bundle is loaded once and items are views into it, and a bad bundle
becomes a single Rejected for the file rather than an exception.
"""
from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from engine.data.io import DecodedImage, ImageReadError, canonical_pixels, check_size, normalize_mask
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
        return [None if math.isnan(v) or v == -1 else _index(v) for v in labels.tolist()], False
    return [None if v == -1 else _index(v) for v in labels.tolist()], False


class _BadLabel(str):
    """A label value that is not a class index; the item is rejected with this text as the reason."""


def _index(value: float) -> int | _BadLabel:
    if value < 0 or value != int(value):
        return _BadLabel(f"label {value:g} is not a class index (use -1 for unlabeled)")
    return int(value)


def _finite_rows(images: np.ndarray) -> np.ndarray:
    """(N,) True where an image has only finite pixels (always, for integer data)."""
    if images.dtype.kind != "f":
        return np.ones(len(images), dtype=bool)
    return np.isfinite(images.reshape(len(images), -1)).all(axis=1)


def iter_npz(path: Path) -> Iterator[SourceItem | Rejected]:
    """Load the bundle once; items are views into it (fast: no per-item decoding or copying)."""
    if not zipfile.is_zipfile(path):  # np.load would hand back a bare array (.npy) or refuse a pickle
        yield Rejected(path.name, "corrupt or unreadable npz: not a zip of .npy arrays (plain .npy and pickle "
                                  "files are not read)")
        return
    try:
        with np.load(path, allow_pickle=False) as z:
            if "images" not in z.files:
                raise _BadNpz("npz has no 'images' array")
            _check_declared_sizes(path, list(z.files))
            images = z["images"]
            if images.ndim == 4 and images.shape[-1] in (1, 3, 4):
                images = images[..., 0] if images.shape[-1] == 1 else images[..., :3]
            elif images.ndim != 3:
                raise _BadNpz(f"npz 'images' must be (N,H,W) or (N,H,W,3), got {images.shape}")
            if images.size == 0:
                raise _BadNpz(f"npz 'images' is empty (shape {images.shape})")
            if images.dtype.kind not in "buif":
                raise _BadNpz(f"npz 'images' has {images.dtype} pixels; expected integers or real floats")
            finite = _finite_rows(images)
            if not finite.all():
                images = images.copy()
                images[~finite] = 0  # rejected below, item by item; zeros keep the dtype decision honest
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
    except (_BadNpz, ImageReadError) as exc:
        yield Rejected(path.name, str(exc))
        return
    except Exception as exc:  # noqa: BLE001 -- zipfile/numpy raise many types for a corrupt bundle
        yield Rejected(path.name, f"corrupt or unreadable npz ({type(exc).__name__}: {exc})")
        return
    bit_depth = images.dtype.itemsize * 8
    for i in range(n):
        if not finite[i]:
            yield Rejected(f"{path.stem}[{i}]", "image has NaN or infinite pixel values")
            continue
        if isinstance(labels[i], _BadLabel):
            yield Rejected(f"{path.stem}[{i}]", str(labels[i]))
            continue
        meta = {"format": "npz", "bit_depth": bit_depth, "index": i}
        meta.update((k, v[i]) for k, v in extras.items())
        name = str(names[i]) if names is not None else f"{path.stem}[{i}]"
        group = (str(groups[i]) or None) if groups is not None else None
        mask = masks[i] if masks is not None else None
        yield SourceItem(name, DecodedImage(images[i], metadata=meta), labels[i], mask, group, None)


def _npz_member_header(path: Path, member: str) -> tuple[tuple[int, ...], np.dtype] | None:
    """(shape, dtype) of one array in an .npz from its header, without loading (or inflating) the data."""
    try:
        with zipfile.ZipFile(path) as zf, zf.open(member + ".npy") as fh:
            version = np.lib.format.read_magic(fh)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = reader(fh)
            return tuple(shape), np.dtype(dtype)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


def npz_header(path: Path, member: str) -> tuple[int, ...] | None:
    """Shape of one array in an .npz from its header, without loading the data."""
    header = _npz_member_header(path, member)
    return None if header is None else header[0]


def max_npz_bytes() -> int:
    """Declared bytes of all arrays of one bundle together (MEDSSL_MAX_NPZ_BYTES, default 1 GiB)."""
    return int(os.environ.get("MEDSSL_MAX_NPZ_BYTES") or 2**30)


def _check_declared_sizes(path: Path, members: list[str]) -> None:
    """Refuse a bundle whose headers promise more than the limit (a 2 MB file once inflated to 2 GiB of zeros)."""
    total = 0
    for member in members:
        header = _npz_member_header(path, member)
        if header is None:
            continue
        shape, dtype = header
        if dtype.hasobject:
            raise _BadNpz(f"corrupt or unreadable npz: '{member}' holds Python objects (pickled data is never loaded)")
        if member == "images" and len(shape) >= 3:
            check_size(int(shape[2]), int(shape[1]))
        total += math.prod(shape) * dtype.itemsize
    limit = max_npz_bytes()
    if total > limit:
        raise _BadNpz(f"npz arrays declare {total / 2**30:.2f} GiB, over the {limit / 2**30:.2f} GiB limit per file "
                      "(split the bundle, or raise MEDSSL_MAX_NPZ_BYTES)")
