"""Freehand mask editing, pure: canvas strokes (RGBA at screen size) -> class-index mask at image size.

The canvas paints every class in its own colour and erasing in ERASE_RGB, all at one fixed opacity, so the
newest stroke dominates every pixel it covers and "nearest palette colour" recovers what was painted last.
No streamlit, no torch, no database: the rules are unit-tested on hand-made arrays.
"""
from __future__ import annotations

import base64

import cv2
import numpy as np

# Class index -> overlay colour (index 0 = background, never drawn). Kept well apart for the nearest rule.
CLASS_RGB = np.array([[0, 0, 0], [230, 60, 60], [60, 140, 230], [60, 200, 90], [240, 200, 40], [220, 60, 220]],
                     np.uint8)
ERASE_RGB = (255, 255, 255)
STROKE_OPACITY = 0.6          # one opacity for every stroke: the newest one always dominates the blend
COVER_ALPHA = int(255 * STROKE_OPACITY / 2)   # a canvas pixel counts as painted from half a stroke's alpha
COVER_FRACTION = 0.5          # a stroke changes an image pixel when it covers at least half of it
ERASE = 0


def paint_classes(n_classes: int) -> list[int]:
    """Foreground class indices that have a colour (index 0 is background; erasing paints it)."""
    return list(range(1, min(max(n_classes, 2), len(CLASS_RGB))))


def stroke_colour(class_index: int) -> str:
    """CSS colour of a brush: the class's overlay colour, or ERASE_RGB for class 0 (erase)."""
    r, g, b = ERASE_RGB if class_index == ERASE else CLASS_RGB[class_index]
    return f"rgba({r}, {g}, {b}, {STROKE_OPACITY})"


def canvas_size(width: int, height: int, target_width: int) -> tuple[int, int]:
    """(canvas width, height) for an image shown `target_width` pixels wide, aspect ratio kept."""
    return target_width, max(1, round(height * target_width / width))


def brush_pixels(brush: int, image_width: int, canvas_width: int) -> int:
    """Brush diameter in canvas pixels for `brush` image pixels."""
    return max(1, round(brush * canvas_width / image_width))


def overlay(rgb: np.ndarray, mask: np.ndarray | None, opacity: float) -> np.ndarray:
    """Image (gray or RGB uint8) with the mask's classes blended in at `opacity`; background untouched."""
    rgb = cv2.cvtColor(rgb, cv2.COLOR_GRAY2RGB) if rgb.ndim == 2 else rgb
    if mask is None:
        return rgb
    if mask.shape != rgb.shape[:2]:
        mask = cv2.resize(mask, rgb.shape[1::-1], interpolation=cv2.INTER_NEAREST)
    colours = CLASS_RGB[np.clip(mask, 0, len(CLASS_RGB) - 1)]
    blend = (rgb * (1 - opacity) + colours * opacity).astype(np.uint8)
    return np.where(mask[..., None] > 0, blend, rgb)


def background(view: np.ndarray, size: tuple[int, int]) -> bytes:
    """PNG of the view scaled to the canvas (width, height) with nearest neighbour, so pixels stay crisp."""
    scaled = cv2.resize(view, size, interpolation=cv2.INTER_NEAREST)
    bgr = cv2.cvtColor(scaled, cv2.COLOR_RGB2BGR) if scaled.ndim == 3 else scaled
    ok, encoded = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError("could not encode the canvas background")
    return encoded.tobytes()


def decode_data_url(url: str) -> np.ndarray:
    """`data:image/png;base64,...` from the canvas -> (h, w, 4) uint8 RGBA."""
    _, _, payload = url.partition(";base64,")
    raw = cv2.imdecode(np.frombuffer(base64.b64decode(payload), np.uint8), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.ndim != 3:
        raise ValueError("the canvas did not send a colour image")
    if raw.shape[2] == 3:
        raw = np.dstack([raw, np.full(raw.shape[:2], 255, np.uint8)])
    return cv2.cvtColor(raw, cv2.COLOR_BGRA2RGBA)


def encode_data_url(rgba: np.ndarray) -> str:
    """Inverse of decode_data_url (tests and fixtures build canvas replies with it)."""
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    if not ok:
        raise ValueError("could not encode RGBA")
    return "data:image/png;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def classify_strokes(rgba: np.ndarray, n_classes: int) -> np.ndarray:
    """(h, w) int16 at canvas size: -1 untouched, 0 erased, k painted with class k (newest stroke wins)."""
    values = [ERASE, *paint_classes(n_classes)]
    palette = np.array([ERASE_RGB, *CLASS_RGB[values[1:]]], np.float32)            # (P, 3)
    labels = np.full(rgba.shape[:2], -1, np.int16)
    covered = rgba[..., 3] >= COVER_ALPHA
    rgb = rgba[covered][:, :3].astype(np.float32)                                    # only painted pixels
    distance = ((rgb[:, None, :] - palette) ** 2).sum(axis=-1)                       # (n, P)
    labels[covered] = np.asarray(values, np.int16)[distance.argmin(axis=-1)]
    return labels


def strokes_to_mask(rgba: np.ndarray, start: np.ndarray, n_classes: int) -> np.ndarray:
    """Apply canvas strokes to `start` (H, W class indices) and return a new mask of exactly that size.

    Each stroke value's canvas coverage is area-averaged onto the image grid; an image pixel takes the value
    covering at least COVER_FRACTION of it, otherwise it keeps its starting value.
    """
    height, width = start.shape
    labels = classify_strokes(rgba, n_classes)
    out = start.astype(np.uint8, copy=True)
    best = np.zeros((height, width), np.float32)
    for value in np.unique(labels[labels >= 0]):
        covered = (labels == value).astype(np.float32)
        fraction = cv2.resize(covered, (width, height), interpolation=cv2.INTER_AREA)
        take = (fraction >= COVER_FRACTION) & (fraction > best)
        out[take] = value
        best = np.maximum(best, np.where(take, fraction, 0))
    return out


def start_mask(mask: np.ndarray | None, height: int, width: int) -> np.ndarray:
    """The starting mask at image size: empty when there is none, nearest-resized when sizes differ."""
    if mask is None:
        return np.zeros((height, width), np.uint8)
    if mask.shape != (height, width):
        mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
    return mask.astype(np.uint8)
