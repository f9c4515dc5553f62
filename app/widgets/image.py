"""Render one stored original for display: window/level for deep data, invert; no database access."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.data.io import default_window, load_original, to_uint8


def load_display(path: Path) -> np.ndarray:
    return load_original(path)


def render(pixels: np.ndarray, window: tuple[float, float] | None = None, invert: bool = False) -> np.ndarray:
    """uint8 image for the screen: 8-bit data as stored (unless a window is forced), deeper data windowed."""
    if pixels.dtype != np.uint8 or window is not None:
        view = to_uint8(pixels.astype(np.float32) if pixels.dtype == np.uint8 else pixels,
                        window or default_window(pixels, None))
    else:
        view = pixels
    return 255 - view if invert else view


def window_range(pixels: np.ndarray) -> tuple[float, float]:
    """Slider bounds for window centre / width."""
    lo, hi = float(np.min(pixels)), float(np.max(pixels))
    return lo, max(hi, lo + 1.0)


def data_url(pixels) -> str:
    """A uint8 preview as a PNG data URL (for image columns of tables)."""
    import base64

    from engine.data.io import encode_png_bytes

    return "data:image/png;base64," + base64.b64encode(encode_png_bytes(pixels)).decode()
