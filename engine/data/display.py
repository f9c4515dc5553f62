"""Map decoded pixels (any dtype) to uint8 for display and the training cache.

Separate from io.py's decoding and storage so the windowing rules live in one short module;
engine.data.io re-exports these names, which is where callers import them from.
"""
from __future__ import annotations

import cv2
import numpy as np


def default_window(pixels: np.ndarray, window: tuple[float, float] | None) -> tuple[float, float]:
    """The DICOM preset when given, else the 0.5-99.5 percentile range; width at least 1."""
    if window is not None:
        return float(window[0]), max(float(window[1]), 1.0)
    flat = np.asarray(pixels).ravel()
    if flat.size > 1_000_000:  # a strided sample is plenty for percentiles
        flat = flat[:: flat.size // 1_000_000]
    if np.issubdtype(flat.dtype, np.floating):
        flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return 0.5, 1.0
    lo, hi = np.percentile(flat, [0.5, 99.5])
    return float(lo + hi) / 2.0, max(float(hi - lo), 1.0)


def to_uint8(pixels: np.ndarray, window: tuple[float, float] | None = None) -> np.ndarray:
    """Display/training bytes: uint8 unchanged, deeper data through the (default) window."""
    if pixels.dtype == np.uint8:
        return pixels
    center, width = default_window(pixels, window)
    lo = center - width / 2.0
    scaled = (pixels.astype(np.float32) - np.float32(lo)) * np.float32(255.0 / width)
    scaled = np.nan_to_num(scaled, nan=0.0)
    return np.rint(np.clip(scaled, 0, 255)).astype(np.uint8)


def to_cache_array(pixels: np.ndarray, size: int, channels: int, window=None) -> np.ndarray:
    """uint8 (size, size) or (size, size, 3) training array; non-square images are stretched."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    arr = to_uint8(pixels, window)
    if channels == 1 and arr.ndim == 3:
        arr = cv2.cvtColor(np.ascontiguousarray(arr[..., :3]), cv2.COLOR_RGB2GRAY)
    elif channels == 3 and arr.ndim == 2:
        arr = cv2.cvtColor(arr, cv2.COLOR_GRAY2RGB)
    height, width = arr.shape[:2]
    if (height, width) != (size, size):
        shrink = height >= size and width >= size
        arr = cv2.resize(arr, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return np.ascontiguousarray(arr)
