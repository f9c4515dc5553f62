"""Segmentation on the Label page, canvas side: draw / erase the mask freehand over the (windowed) image.

The canvas (streamlit-drawable-canvas, Fabric.js) shows the image with the starting mask blended in and
records strokes on top; "Save mask" turns the strokes into a mask at the image's own size
(app/widgets/mask_paint.py) and stores it as a new human label with its own PNG.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from app import state
from app.text import md
from app.views.label_masks import (
    MaskSource,
    accept,
    load_source,
    mask_sources,
    save_mask_label,
    upload_control,
)
from app.widgets import mask_paint
from db.models import Image

FIT_WIDTH = 600     # canvas width for zoom "fit": the Label page's left column at 1440 px


@dataclass(frozen=True)
class PaintSetup:
    """Everything the canvas and the save callback need, fixed for one rerun."""

    image_id: int
    start: np.ndarray          # (H, W) uint8 class indices at the image's size
    source: MaskSource
    n_classes: int
    value: int                 # class painted by the brush; mask_paint.ERASE erases
    brush: int                 # brush diameter in image pixels
    opacity: float             # of the starting mask over the image


def canvas_key(setup: PaintSetup, width: int) -> str:
    """New key (so an empty canvas) per image, starting mask, zoom and "Clear strokes"."""
    return f"label.canvas.{setup.image_id}.{setup.source.name}.{width}.{state.get(state.CANVAS_NONCE, 0)}"


def _canvas_rgba(key: str | None) -> np.ndarray | None:
    """The strokes the browser sent last for this canvas (RGBA at canvas size), or None when none."""
    value = st.session_state.get(key) if key else None
    url = ((value or {}).get("drawing") or {}).get("data")
    return mask_paint.decode_data_url(url) if url else None


def stroke_count(key: str | None) -> int:
    """Strokes on the canvas now (Fabric objects the browser reported), for the caption and the comment."""
    value = st.session_state.get(key) if key else None
    raw = ((value or {}).get("drawing") or {}).get("raw") or {}
    return len(raw.get("objects") or [])


def _save_canvas(setup: PaintSetup) -> None:
    """Save button callback: strokes over the starting mask -> a new human label."""
    key = state.get(state.CANVAS_KEY)
    rgba = _canvas_rgba(key)
    mask = setup.start if rgba is None else mask_paint.strokes_to_mask(rgba, setup.start, setup.n_classes)
    what = f"drawn on canvas from {setup.source.caption}" if stroke_count(key) else f"saved {setup.source.caption}"
    typed = st.session_state.get(state.COMMENT)
    save_mask_label(setup.image_id, mask, f"{typed} ({what})" if typed else what)
    st.session_state[state.COMMENT] = ""
    _clear()


def _clear() -> None:
    state.put(state.CANVAS_NONCE, state.get(state.CANVAS_NONCE, 0) + 1)


def _set_erase(erase: bool) -> None:
    state.put(state.PAINT_ERASE, erase)


def paint_controls(session, image: Image, class_names: list[str]) -> PaintSetup:
    """Right column: starting mask, draw/erase, class, brush, opacity, save; returns the canvas setup."""
    n_classes = len(class_names)
    sources = mask_sources(session, image)
    names = [s.name for s in sources]
    chosen = st.radio("start from", names, horizontal=True, key=state.start_key(image.id),
                      help="changing it clears unsaved strokes")
    source = sources[names.index(chosen)]
    classes = mask_paint.paint_classes(n_classes)
    cols = st.columns(2)
    erase = bool(state.get(state.PAINT_ERASE, False))
    cols[0].button("Draw (D)", shortcut="d", on_click=_set_erase, args=(False,), use_container_width=True,
                   type="secondary" if erase else "primary")
    cols[1].button("Erase (E)", shortcut="e", on_click=_set_erase, args=(True,), use_container_width=True,
                   type="primary" if erase else "secondary", help="erased pixels become background")
    st.caption("Mode: **erasing** (E); press D to draw" if erase else "Mode: **drawing** (D); press E to erase")
    value = classes[0]
    if len(classes) > 1:
        value = st.selectbox("class to draw", classes, format_func=lambda c: f"{c} · {class_names[c]}"
                             if c < n_classes else f"class {c}")
    short = min(image.width, image.height)
    brush = st.slider("brush size (image pixels)", 1, max(2, short // 4), max(1, short // 32))
    opacity = st.slider("mask opacity", 0.0, 1.0, 0.45, 0.05)
    setup = PaintSetup(image.id, mask_paint.start_mask(load_source(source), image.height, image.width), source,
                       n_classes, mask_paint.ERASE if erase else value, brush, opacity)
    st.button("Save mask (Enter)", type="primary", shortcut="Enter", on_click=_save_canvas, args=(setup,),
              use_container_width=True, help="strokes over the starting mask become a new label at the image's size")
    cols = st.columns(2)
    cols[0].button("Clear strokes", on_click=_clear, use_container_width=True)
    proposal = next((s for s in sources if s.proposal_id is not None), None)
    if proposal is not None:
        cols[1].button("Accept proposal as is", on_click=accept, args=(image.id, proposal.proposal_id),
                       use_container_width=True)
    upload_control(image, n_classes)
    return setup


def paint_canvas(view: np.ndarray, setup: PaintSetup, zoom: int | str, caption: str) -> None:
    """Left column: the canvas over the windowed image with the starting mask blended in."""
    height, width = setup.start.shape
    size = mask_paint.canvas_size(width, height, FIT_WIDTH if zoom == "fit" else int(zoom))
    key = canvas_key(setup, size[0])
    state.put(state.CANVAS_KEY, key)
    shown = mask_paint.overlay(view, setup.start, setup.opacity)
    _canvas(mask_paint.background(shown, size), size, key,
            mask_paint.stroke_colour(setup.value), mask_paint.brush_pixels(setup.brush, width, size[0]))
    st.caption(f"{md(caption)} · starting from {md(setup.source.caption)}")


@st.fragment
def _canvas(png: bytes, size: tuple[int, int], key: str, colour: str, stroke_width: int) -> None:
    """A fragment, so a stroke (sent on mouse-up) reruns only the canvas, not the whole page."""
    # Imported here: the package registers its component at import, which needs a running Streamlit.
    from streamlit_drawable_canvas import st_canvas

    st_canvas(stroke_width=stroke_width, stroke_color=colour, background_image=png, update_streamlit=True,
              width=size[0], height=size[1], drawing_mode="freedraw", return_image_data=True, key=key)
    strokes = stroke_count(key)
    st.caption(f"{strokes} unsaved stroke{'s' if strokes != 1 else ''}" if strokes else
               "draw on the image; erase strokes show white")
