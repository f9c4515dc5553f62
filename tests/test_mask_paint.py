"""Canvas strokes -> mask at image resolution, on hand-made RGBA arrays (no browser, no streamlit)."""
from __future__ import annotations

import numpy as np
import pytest

from app.widgets import mask_paint as mp

ALPHA = int(255 * mp.STROKE_OPACITY)


def _canvas(height: int, width: int) -> np.ndarray:
    return np.zeros((height, width, 4), np.uint8)


def _paint(rgba: np.ndarray, rows: slice, cols: slice, value: int) -> None:
    """What the browser exports for a stroke: the brush colour (un-premultiplied) at the stroke alpha."""
    rgba[rows, cols, :3] = mp.ERASE_RGB if value == mp.ERASE else mp.CLASS_RGB[value]
    rgba[rows, cols, 3] = ALPHA


def test_square_drawn_at_4x_lands_on_exact_image_pixels() -> None:
    rgba = _canvas(64, 80)                                   # image 16 x 20 shown 4x
    _paint(rgba, slice(8, 24), slice(12, 32), 1)             # image rows 2..5, cols 3..7
    mask = mp.strokes_to_mask(rgba, np.zeros((16, 20), np.uint8), n_classes=2)
    expected = np.zeros((16, 20), np.uint8)
    expected[2:6, 3:8] = 1
    assert mask.shape == (16, 20) and mask.dtype == np.uint8
    assert np.array_equal(mask, expected)


def test_erase_part_of_a_drawn_square_and_of_the_starting_mask() -> None:
    start = np.zeros((16, 16), np.uint8)
    start[10:14, 10:14] = 1                                  # e.g. the model's proposal
    rgba = _canvas(32, 32)                                   # 2x
    _paint(rgba, slice(4, 16), slice(4, 16), 1)              # draw image square 2..7
    _paint(rgba, slice(4, 16), slice(12, 16), mp.ERASE)      # then erase its columns 6..7 (on top)
    _paint(rgba, slice(20, 24), slice(20, 28), mp.ERASE)     # erase rows 10..11, cols 10..13 of the start
    mask = mp.strokes_to_mask(rgba, start, n_classes=2)
    expected = np.zeros((16, 16), np.uint8)
    expected[2:8, 2:6] = 1
    expected[12:14, 10:14] = 1
    assert np.array_equal(mask, expected)
    assert np.array_equal(start[10:14, 10:14], np.ones((4, 4), np.uint8))   # the input is not modified


def test_newest_stroke_wins_after_alpha_blending() -> None:
    """A browser blends a stroke over an older one: the newer colour dominates, so it decides the pixel."""
    a = mp.STROKE_OPACITY
    older, newer = mp.CLASS_RGB[1].astype(float), np.array(mp.ERASE_RGB, float)
    premultiplied = newer * a + older * a * (1 - a)
    alpha = a + a * (1 - a)
    rgba = _canvas(2, 2)
    rgba[..., :3] = np.round(premultiplied / alpha).astype(np.uint8)
    rgba[..., 3] = round(255 * alpha)
    assert (mp.classify_strokes(rgba, 2) == mp.ERASE).all()
    start = np.ones((1, 1), np.uint8)
    assert mp.strokes_to_mask(rgba, start, 2)[0, 0] == 0


def test_faint_antialiased_edges_and_small_covers_keep_the_start() -> None:
    rgba = _canvas(8, 8)
    _paint(rgba, slice(0, 8), slice(0, 8), 1)
    rgba[..., 3] = mp.COVER_ALPHA - 1                        # an edge too faint to count
    assert (mp.classify_strokes(rgba, 2) == -1).all()
    rgba = _canvas(8, 8)                                     # 4x: a 1-pixel-wide line covers 1/4 of a pixel
    _paint(rgba, slice(0, 8), slice(0, 1), 1)
    assert not mp.strokes_to_mask(rgba, np.zeros((2, 2), np.uint8), 2).any()


def test_multiclass_strokes_and_a_canvas_smaller_than_the_image() -> None:
    rgba = _canvas(10, 10)                                   # image 20 x 20 shown at half size
    _paint(rgba, slice(0, 5), slice(0, 10), 2)
    _paint(rgba, slice(5, 10), slice(0, 5), 3)
    mask = mp.strokes_to_mask(rgba, np.zeros((20, 20), np.uint8), n_classes=4)
    assert mask.shape == (20, 20)
    assert (mask[:10] == 2).all() and (mask[10:, :10] == 3).all() and (mask[10:, 10:] == 0).all()


def test_data_url_round_trip_and_canvas_helpers() -> None:
    rgba = _canvas(6, 9)
    _paint(rgba, slice(1, 3), slice(2, 7), 1)
    assert np.array_equal(mp.decode_data_url(mp.encode_data_url(rgba)), rgba)
    assert mp.canvas_size(128, 96, 512) == (512, 384)
    assert mp.brush_pixels(4, 128, 512) == 16 and mp.brush_pixels(1, 1024, 512) == 1
    assert mp.paint_classes(2) == [1] and mp.paint_classes(1) == [1] and mp.paint_classes(99) == [1, 2, 3, 4, 5]
    assert mp.stroke_colour(0).startswith("rgba(255, 255, 255") and mp.stroke_colour(1).startswith("rgba(230, 60, 60")
    with pytest.raises(ValueError):
        mp.decode_data_url("data:image/png;base64,AAAA")


def test_start_mask_and_overlay() -> None:
    assert np.array_equal(mp.start_mask(None, 3, 4), np.zeros((3, 4), np.uint8))
    small = np.array([[0, 1], [1, 0]], np.uint8)
    assert np.array_equal(mp.start_mask(small, 4, 4), np.kron(small, np.ones((2, 2), np.uint8)))
    gray = np.full((2, 2), 100, np.uint8)
    shown = mp.overlay(gray, small, 0.5)
    assert shown.shape == (2, 2, 3) and (shown[0, 0] == 100).all() and tuple(shown[0, 1]) == (165, 80, 80)
    png = mp.background(shown, (8, 8))
    assert png.startswith(b"\x89PNG")
