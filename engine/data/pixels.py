"""What every decoder produces and the limits every decoder checks: shared by io.py and dicom.py.

io.py dispatches to dicom.py, and dicom.py needs the same types and size checks, so they live here,
below both, and the import between the two points one way.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MAX_PIXELS = 100_000_000
MAX_TOTAL_PIXELS = 250_000_000  # all frames of one file together (~1 GB as float32); checked from the header


class ImageReadError(Exception):
    """A file could not be used as an image; the message is the reason shown to the user."""


@dataclass
class DecodedImage:
    """One decoded frame with values as they should be displayed (see module docs of read_image)."""

    pixels: np.ndarray
    modality: str | None = None
    window: tuple[float, float] | None = None
    metadata: dict = field(default_factory=dict)
    patient_id: str | None = None
    from_dicom: bool = False  # its source file name is never stored (CONTRACTS §3)


def check_size(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        mp = width * height / 1e6
        raise ImageReadError(
            f"image too large: {width}x{height} = {mp:.1f} megapixels (limit {MAX_PIXELS // 1_000_000})")


def canonical_pixels(arr: np.ndarray, keep_uint8: bool = True) -> np.ndarray:
    """uint8 stays; other data becomes int16 when integral and in range, else float32."""
    if arr.dtype == np.uint8 and keep_uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8)
    if arr.size == 0:
        return arr.astype(np.int16)
    if arr.dtype == np.int16:
        return arr
    if np.issubdtype(arr.dtype, np.integer):
        integral = True
    else:
        integral = bool(np.isfinite(arr).all()) and bool(np.array_equal(arr, np.round(arr)))
    if integral and arr.min() >= -32768 and arr.max() <= 32767:
        return arr.astype(np.int16)
    return arr.astype(np.float32)
