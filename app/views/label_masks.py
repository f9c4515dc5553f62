"""Segmentation on the Label page, data side: where a starting mask comes from (current label, the model's
proposal, nothing), accepting a proposal, uploading a corrected mask, and the one save path they and the
canvas share. Every save writes a new mask file (one per label version), so history stays intact."""
from __future__ import annotations

import uuid
from dataclasses import dataclass

import cv2
import numpy as np
import streamlit as st
from sqlalchemy import select

from app import state
from app.auth import acting_user
from app.resources import get_store
from app.text import md
from db.engine import write_session
from db.labels import LabelError
from db.models import Image, Label, Project
from db.reading import answer
from db.roles import PermissionDenied
from engine.data.io import load_mask, save_mask


@dataclass(frozen=True)
class MaskSource:
    """One mask the canvas can start from; `path` is relative to MEDSSL_HOME (None = empty mask)."""

    name: str
    caption: str
    path: str | None = None
    proposal_id: int | None = None


def mask_sources(session, image: Image) -> list[MaskSource]:
    """The current label's mask, then the newest model proposal, then an empty mask (always last)."""
    sources = []
    if image.current_label_id:
        label = session.get(Label, image.current_label_id)
        if label is not None and label.mask_path:
            sources.append(MaskSource("current label", f"current label (#{label.id})", label.mask_path))
    proposal = session.scalars(select(Label).where(Label.image_id == image.id, Label.source == "model",
                                                   Label.mask_path.is_not(None)).order_by(Label.id.desc())).first()
    if proposal is not None:
        sources.append(MaskSource("model proposal", f"model proposal (checkpoint {proposal.checkpoint_id})",
                                  proposal.mask_path, proposal.id))
    sources.append(MaskSource("empty", "an empty mask"))
    return sources


def load_source(source: MaskSource) -> np.ndarray | None:
    return None if source.path is None else load_mask(get_store().config.home / source.path)


def save_mask_label(image_id: int, mask: np.ndarray, comment: str) -> None:
    """Write the mask as its own PNG and append a human label pointing at it; the queue moves on."""
    try:
        _save_mask(image_id, mask, comment)
    except (LabelError, PermissionDenied) as error:   # the lease went to someone else, or the role changed
        st.toast(md(error))
    state.put(state.LAST_SAVED, image_id)
    state.drop(state.CURRENT_IMAGE)


def _save_mask(image_id: int, mask: np.ndarray, comment: str) -> None:
    store = get_store()
    with write_session(store.sessions) as session:
        image = session.get(Image, image_id)
        if mask.ndim != 2 or mask.shape != (image.height, image.width):
            raise ValueError(f"mask of shape {mask.shape} does not match image {image.width}×{image.height}")
        path = save_mask(mask.astype(np.uint8), store.config.masks_dir / f"p{image.project_id}"
                         / f"{image_id}-{uuid.uuid4().hex[:12]}")
        answer(session, session.get(Project, image.project_id), image, acting_user(session), None, comment=comment,
               mask_path=path.relative_to(store.config.home).as_posix())


def accept(image_id: int, proposal_id: int) -> None:
    with get_store().sessions.begin() as session:
        mask = load_mask(get_store().config.home / session.get(Label, proposal_id).mask_path)
    save_mask_label(image_id, mask, f"accepted model proposal (label {proposal_id})")


def upload_control(image: Image, n_classes: int) -> None:
    """A corrected mask as a PNG file: class index per pixel, or 0/255 for a binary mask."""
    upload = st.file_uploader("upload a corrected mask (PNG, class index per pixel or 0/255)", type=["png"],
                              key=f"mask{image.id}")
    if upload is None:
        return
    decoded = cv2.imdecode(np.frombuffer(upload.getvalue(), np.uint8), cv2.IMREAD_GRAYSCALE)
    if decoded is None or decoded.shape != (image.height, image.width):
        st.error(f"Not saved: the mask must be a PNG of {image.width}×{image.height} pixels.")
        return
    decoded = (decoded > 127).astype(np.uint8) if decoded.max() > n_classes - 1 else decoded
    st.button("Save uploaded mask", on_click=save_mask_label, args=(image.id, decoded, "uploaded mask"))
