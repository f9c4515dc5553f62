"""Segmentation on the Label page: overlay the current mask or the model's proposal, accept it, or upload a
corrected mask. Every save writes a new mask file (one per label version), so history stays intact."""
from __future__ import annotations

import uuid

import cv2
import numpy as np
import streamlit as st
from sqlalchemy import select

from app import state
from app.resources import get_store
from db.labels import add_label
from db.models import Image, Label
from db.projects import get_or_create_annotator
from engine.data.io import load_mask, save_mask

OVERLAY_COLOURS = np.array([[0, 0, 0], [230, 60, 60], [60, 140, 230], [60, 200, 90], [240, 200, 40]], np.uint8)


def overlay(pixels_uint8: np.ndarray, mask: np.ndarray | None, opacity: float) -> np.ndarray:
    rgb = cv2.cvtColor(pixels_uint8, cv2.COLOR_GRAY2RGB) if pixels_uint8.ndim == 2 else pixels_uint8
    if mask is None:
        return rgb
    if mask.shape != rgb.shape[:2]:
        mask = cv2.resize(mask, rgb.shape[1::-1], interpolation=cv2.INTER_NEAREST)
    colours = OVERLAY_COLOURS[np.clip(mask, 0, len(OVERLAY_COLOURS) - 1)]
    blend = (rgb * (1 - opacity) + colours * opacity).astype(np.uint8)
    return np.where(mask[..., None] > 0, blend, rgb)


def shown_mask(session, image: Image) -> tuple[np.ndarray | None, str, int | None]:
    """(mask, where it comes from, proposal label id): the current label's mask, else the newest proposal."""
    home = get_store().config.home
    if image.current_label_id:
        label = session.get(Label, image.current_label_id)
        if label is not None and label.mask_path:
            return load_mask(home / label.mask_path), "current label", None
    proposal = session.scalars(select(Label).where(Label.image_id == image.id, Label.source == "model",
                                                   Label.mask_path.is_not(None)).order_by(Label.id.desc())).first()
    if proposal is not None:
        return load_mask(home / proposal.mask_path), f"model proposal (checkpoint {proposal.checkpoint_id})", proposal.id
    return None, "no mask yet", None


def _save_mask_label(image_id: int, mask: np.ndarray, comment: str) -> None:
    store = get_store()
    path = save_mask(mask.astype(np.uint8), store.config.masks_dir / f"p{state.get(state.PROJECT)}"
                     / f"{image_id}-{uuid.uuid4().hex[:12]}")
    with store.sessions.begin() as session:
        annotator = get_or_create_annotator(session, state.get(state.ANNOTATOR) or state.default_annotator())
        add_label(session, session.get(Image, image_id), annotator, None, comment=comment,
                  mask_path=path.relative_to(store.config.home).as_posix())
    state.put(state.LAST_SAVED, image_id)
    state.drop(state.CURRENT_IMAGE)


def accept(image_id: int, proposal_id: int) -> None:
    with get_store().sessions.begin() as session:
        mask = load_mask(get_store().config.home / session.get(Label, proposal_id).mask_path)
    _save_mask_label(image_id, mask, f"accepted model proposal (label {proposal_id})")


def mask_controls(session, image: Image, n_classes: int) -> tuple[np.ndarray | None, float]:
    """Buttons for the right column; returns the mask to overlay and its opacity."""
    mask, source, proposal_id = shown_mask(session, image)
    opacity = st.slider("mask opacity", 0.0, 1.0, 0.45, 0.05)
    st.caption(f"showing: {source}")
    if proposal_id is not None:
        st.button("Accept proposal (Enter)", type="primary", shortcut="Enter", on_click=accept,
                  args=(image.id, proposal_id), use_container_width=True)
    upload = st.file_uploader("upload a corrected mask (PNG, class index per pixel or 0/255)", type=["png"],
                              key=f"mask{image.id}")
    if upload is not None:
        decoded = cv2.imdecode(np.frombuffer(upload.getvalue(), np.uint8), cv2.IMREAD_GRAYSCALE)
        if decoded is None or decoded.shape != (image.height, image.width):
            st.error(f"Not saved: the mask must be a PNG of {image.width}×{image.height} pixels.")
        else:
            decoded = (decoded > 127).astype(np.uint8) if decoded.max() > n_classes - 1 else decoded
            st.button("Save uploaded mask", on_click=_save_mask_label, args=(image.id, decoded, "uploaded mask"))
    return mask, opacity
