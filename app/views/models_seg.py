"""Models & metrics for segmentation projects: Dice / Jaccard / HD95 / ASD per split, the per-image Dice
histogram, and the worst cases as overlays (ground truth green, model red) so a reader sees how it fails."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.queries import thumbnails
from app.resources import get_store

SEG_HEADLINE = ["dice", "jaccard", "hd95", "asd"]
UNITS = {"hd95": " px", "asd": " px"}
OVERLAY_SIZE = 192


def dice_histogram(dice: list[float]) -> go.Figure:
    values = [d for d in dice if d is not None and not math.isnan(d)]
    fig = go.Figure(go.Histogram(x=values, xbins={"start": 0.0, "end": 1.0001, "size": 0.05}, marker_color="#4c78a8"))
    fig.update_layout(height=300, margin={"l": 10, "r": 10, "t": 30, "b": 10}, title="Dice per image",
                      xaxis_title="Dice", yaxis_title="images", bargap=0.05)
    return fig


def overlay(image: np.ndarray, truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """RGB preview with the ground-truth outline in green and the model's in red (foreground = class >= 1)."""
    import cv2

    rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
    rgb = np.ascontiguousarray(rgb.astype(np.uint8))
    size = rgb.shape[1], rgb.shape[0]
    for mask, colour in ((truth, (40, 200, 60)), (predicted, (230, 40, 40))):
        fg = cv2.resize((np.asarray(mask) > 0).astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(fg, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(rgb, contours, -1, colour, 2)
    return rgb


def _worst(worst: list[dict]) -> None:
    from engine.data.io import load_mask

    if not worst:
        return
    st.subheader("Worst cases")
    st.caption("Lowest Dice first; green = ground truth, red = model.")
    home = get_store().config.home
    previews = thumbnails([w["image_id"] for w in worst], OVERLAY_SIZE)
    images = [overlay(p, load_mask(home / w["truth_mask"]), load_mask(home / w["predicted_mask"]))
              for p, w in zip(previews, worst)]
    st.image(images, caption=[f"image {w['image_id']} · Dice {w['dice']:.3f}" for w in worst], width=OVERLAY_SIZE)


def show_seg_report(report: dict) -> None:
    metrics = report["metrics"]
    cols = st.columns(len(SEG_HEADLINE))
    for col, key in zip(cols, SEG_HEADLINE):
        value = metrics.get(key)
        col.metric(key.upper() if key != "jaccard" else "Jaccard",
                   "–" if value is None else f"{value:.3f}{UNITS.get(key, '')}")
    st.caption(f"{report['n']} labeled images; HD95/ASD in pixels at the analysis size.")
    per_class = pd.DataFrame(metrics.get("per_class") or {}).T
    if not per_class.empty:
        st.dataframe(per_class, width="stretch")
    per_image = report.get("per_image") or {}
    if per_image.get("dice"):
        st.plotly_chart(dice_histogram(per_image["dice"]), width="stretch")
    _worst(report.get("worst") or [])
