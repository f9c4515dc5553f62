"""The Explore map as a compact Plotly WebGL figure; pure (no database, no session state).

Why this shape: at 50,000 points the browser time is spent decoding, laying out and drawing what the
server sends, so every per-point byte counts. Per point the figure carries only x, y (uint16 grid
positions: the UMAP axes are hidden and have no units) and one float32 pair (image id, entropy) for hover
and selection. Everything else that hover shows (the colouring value, the current label, the model's
prediction) is constant within a trace and lives in that trace's name and hovertemplate, so no per-point
strings are sent. Traces are split by (colour value, label, prediction); the legend shows one entry per
colour value (legend groups).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from app.palette import colour_map
from app.text import html

COLOR_COLUMNS = {"current label": "label", "predicted class": "predicted", "uncertainty (entropy)": "entropy",
                 "teacher–student disagreement": "disagreement", "split": "split", "label status": "status"}
CONTINUOUS = ("entropy", "disagreement")
MAX_TRACES = 60          # beyond this many (colour, label, prediction) groups, label/prediction leave the hover
GRID = 65535             # uint16 positions: sub-pixel even at 40x zoom of a 1,400 px wide map
UNLABELED_GREY = "#c9ced6"


@dataclass(frozen=True)
class MapFigure:
    """The figure plus what the page says about it: points drawn of points mapped."""

    figure: go.Figure
    shown: int
    total: int


def grid_positions(values: np.ndarray) -> np.ndarray:
    """Min-max scale to 0..GRID as uint16 (half of float32; the map's axes carry no meaning)."""
    values = np.asarray(values, dtype=np.float64)
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    span = high - low if high > low else 1.0
    return np.rint((values - low) / span * GRID).astype(np.uint16)


def _hover(color_by: str, label: str | None, predicted: str | None, continuous: bool) -> str:
    lines = ["image %{customdata[0]}"]
    if label is not None:
        lines.append(f"label {_escape(label)}")
    if predicted is not None:
        lines.append(f"model {_escape(predicted) or '—'}")
    lines.append("entropy %{customdata[1]:.3f}")
    if continuous:
        lines.append(f"{color_by} " + "%{marker.color:.3f}")
    return "<br>".join(lines) + "<extra>%{fullData.name}</extra>"


def _escape(text: str) -> str:
    """Trace-level strings go into a hovertemplate: shown as text (no HTML), its % and brace syntax literal."""
    return html(text).replace("%", "%%").replace("{", "(").replace("}", ")")


def _groups(frame: pd.DataFrame, column: str | None) -> tuple[list[tuple], np.ndarray, bool]:
    """Group keys (colour value, label, prediction) in drawing order and each row's group number;
    unlabeled first so labeled points are drawn on top of them."""
    parts = [pd.factorize(frame[name].fillna("").astype(str)) if name else (np.zeros(len(frame), np.int64),
                                                                              pd.Index([""]))
             for name in (column, "label", "predicted")]
    combined = np.zeros(len(frame), np.int64)
    for codes, uniques in parts:          # one integer per (colour, label, prediction): no per-row tuples
        combined = combined * len(uniques) + codes
    used, group = np.unique(combined, return_inverse=True)
    detailed = len(used) <= MAX_TRACES
    if not detailed:
        used, group = np.unique(parts[0][0], return_inverse=True)
    keys = []
    for code in used.tolist():
        if not detailed:
            keys.append((parts[0][1][code], "", ""))
            continue
        key = []
        for codes, uniques in reversed(parts):
            key.append(uniques[code % len(uniques)])
            code //= len(uniques)
        keys.append(tuple(reversed(key)))
    order = sorted(range(len(keys)), key=lambda i: (keys[i][0] != "unlabeled", keys[i]))
    return [keys[i] for i in order], np.argsort(order)[group.ravel()], detailed


def first_paint_rows(frame: pd.DataFrame, limit: int) -> np.ndarray:
    """Positions of at most `limit` rows, in frame order: every case a person decided on (labeled, unsure,
    excluded), then the best-ranked unlabeled ones (acquisition rank) for half of what is left, then a
    fixed random sample of the rest so the map keeps its shape. All rows when they fit."""
    if limit <= 0 or len(frame) <= limit:
        return np.arange(len(frame))
    unlabeled = (frame["status"] == "unlabeled").to_numpy()
    decided, rest = np.flatnonzero(~unlabeled)[:limit], np.flatnonzero(unlabeled)
    budget = limit - len(decided)
    rank = frame["acquisition_rank"].to_numpy(np.float64)[rest]
    rest = rest[np.argsort(np.where(np.isnan(rank), np.inf, rank), kind="stable")]
    top, others = rest[:budget // 2], rest[budget // 2:]
    sample = np.random.default_rng(0).choice(others, size=min(len(others), budget - len(top)), replace=False)
    return np.sort(np.concatenate([decided, top, sample]))


def build_map(frame: pd.DataFrame, color_by: str, limit: int = 0, classes: list[str] | None = None) -> MapFigure:
    """frame: one row per mapped image with image_id, x, y, status, label, predicted, entropy,
    acquisition_rank and the colour columns of COLOR_COLUMNS. limit > 0 draws at most that many points
    (first_paint_rows); positions are scaled over all rows, so the capped map lines up with the full one."""
    total = len(frame)
    x, y = grid_positions(frame["x"].to_numpy()), grid_positions(frame["y"].to_numpy())
    drawn = first_paint_rows(frame, limit)
    if len(drawn) < total:
        frame, x, y = frame.iloc[drawn], x[drawn], y[drawn]
    column = COLOR_COLUMNS[color_by]
    continuous = column in CONTINUOUS
    # float32: ids stay exact below 2**24 (16.7M images); entropy needs no more precision for hover
    custom = np.column_stack([frame["image_id"].to_numpy(np.float32),
                              frame["entropy"].fillna(0).to_numpy(np.float32)])
    colours = frame[column].fillna(0).to_numpy(np.float32) if continuous else None
    keys, group, detailed = _groups(frame, None if continuous else column)
    categories = sorted({key[0] for key in keys} - {"unlabeled"})
    palette = colour_map(list(classes or []), categories)  # class i has one colour on every page
    fig = go.Figure()
    seen: set[str] = set()
    for number, (value, label, predicted) in enumerate(keys):
        rows = group == number
        name = color_by if continuous else html(value)  # user text: Plotly renders HTML in names
        marker = ({"size": 5, "opacity": 0.85, "color": colours[rows], "coloraxis": "coloraxis"} if continuous
                  else {"size": 5, "opacity": 0.8, "color": palette.get(value, UNLABELED_GREY)})
        hover = _hover(color_by, label if detailed and column != "label" else None,
                       predicted if detailed and column != "predicted" else None, continuous)
        fig.add_trace(go.Scattergl(x=x[rows], y=y[rows], mode="markers", name=name, legendgroup=name,
                                   showlegend=name not in seen, customdata=custom[rows], hovertemplate=hover,
                                   marker=marker))
        seen.add(name)
    extent = {"visible": False, "range": [-0.02 * GRID, 1.02 * GRID]}   # the same frame capped or not
    # No dragmode: Streamlit then starts in pan with clickmode "event+select", so a click selects a point;
    # with dragmode lasso/select it sets clickmode "event" and a click selects nothing.
    fig.update_layout(height=620, margin={"l": 10, "r": 10, "t": 30, "b": 10}, xaxis=extent, yaxis=extent,
                      legend_title_text=color_by, hovermode="closest", uirevision="map")
    if continuous:
        fig.update_layout(coloraxis={"colorscale": "Viridis", "colorbar": {"title": {"text": column}}})
    return MapFigure(fig, shown=len(frame), total=total)


def selected_ids(points: list[dict]) -> list[int]:
    """Image ids of the points a click, box or lasso selected: customdata[0] of each point. The browser
    sends a typed-array row as {"0": id, "1": entropy} (JSON of a Float32Array), not as a list."""
    ids = []
    for point in points:
        data = point.get("customdata")
        if isinstance(data, dict):
            data = data.get("0")
        elif isinstance(data, (list, tuple)):
            data = data[0] if data else None
        if data is not None:
            ids.append(round(float(data)))
    return list(dict.fromkeys(ids))
