"""Figures from DataFrames; pure (no database, no session state)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

COLOR_COLUMNS = {"current label": "label", "predicted class": "predicted", "uncertainty (entropy)": "entropy",
                 "teacher–student disagreement": "disagreement", "split": "split", "label status": "status"}


def umap_scatter(frame: pd.DataFrame, color_by: str) -> go.Figure:
    """WebGL scatter that stays responsive at 50k points: one trace per category, numeric customdata only
    (Plotly ships numeric arrays as compact typed arrays; per-point hover strings would dominate the
    payload). Hover: image id, the colouring value (trace name), predicted class index and entropy."""
    column = COLOR_COLUMNS[color_by]
    hover = ("image %{customdata[0]}<br>predicted class %{customdata[1]}<br>entropy %{customdata[2]:.3f}"
             "<extra>%{fullData.name}</extra>")
    # float32 typed arrays: half the payload of float64 (ids stay exact below 2**24 = 16.7M images)
    custom = np.column_stack([frame["image_id"].to_numpy(np.float32),
                              pd.to_numeric(frame["predicted_value"], errors="coerce").fillna(-1).to_numpy(np.float32),
                              frame["entropy"].fillna(0).to_numpy(np.float32)])
    frame = frame.assign(x=frame["x"].astype(np.float32), y=frame["y"].astype(np.float32))
    fig = go.Figure()
    if column in ("entropy", "disagreement"):
        fig.add_trace(go.Scattergl(x=frame["x"].to_numpy(), y=frame["y"].to_numpy(), mode="markers", name=color_by,
                                   customdata=custom, hovertemplate=hover,
                                   marker={"size": 5, "color": frame[column].fillna(0).to_numpy(),
                                           "colorscale": "Viridis", "showscale": True, "opacity": 0.85}))
    else:
        values = frame[column].astype(str)
        categories = sorted(set(values) - {"unlabeled"})
        palette = dict(zip(categories, px.colors.qualitative.Bold))
        for category in (["unlabeled"] if "unlabeled" in set(values) else []) + categories:  # unlabeled underneath
            rows = (values == category).to_numpy()
            fig.add_trace(go.Scattergl(x=frame["x"].to_numpy()[rows], y=frame["y"].to_numpy()[rows], mode="markers",
                                       name=category, customdata=custom[rows], hovertemplate=hover,
                                       marker={"size": 5, "opacity": 0.8,
                                               "color": palette.get(category, "#c9ced6")}))
    fig.update_layout(height=620, margin={"l": 10, "r": 10, "t": 30, "b": 10}, dragmode="lasso",
                      xaxis={"visible": False}, yaxis={"visible": False}, legend_title_text=color_by)
    return fig


def relation_graph(center: int, nodes: pd.DataFrame, edges: pd.DataFrame) -> go.Figure:
    """Star-and-mesh graph of a case and its neighbours: nodes coloured by label, edge width = similarity.

    nodes: image_id, label, x, y (layout positions); edges: source, target, similarity (within nodes).
    """
    position = nodes.set_index("image_id")[["x", "y"]]
    fig = go.Figure()
    for edge in edges.itertuples():
        (x0, y0), (x1, y1) = position.loc[edge.source], position.loc[edge.target]
        fig.add_trace(go.Scatter(x=[x0, x1], y=[y0, y1], mode="lines", hoverinfo="skip", showlegend=False,
                                 line={"width": max(0.5, 8 * float(edge.similarity) ** 4), "color": "#9aa5b1"}))
    for label, group in nodes.groupby("label"):
        fig.add_trace(go.Scatter(x=group["x"], y=group["y"], mode="markers+text", name=label,
                                 text=[str(i) for i in group["image_id"]], textposition="top center",
                                 marker={"size": [26 if i == center else 16 for i in group["image_id"]],
                                         "line": {"width": 1, "color": "white"}},
                                 customdata=group[["image_id"]], hovertemplate="image %{customdata[0]}<extra>"
                                 + str(label) + "</extra>"))
    fig.update_layout(height=460, margin={"l": 10, "r": 10, "t": 10, "b": 10}, xaxis={"visible": False},
                      yaxis={"visible": False}, legend_title_text="label")
    return fig


def roc_figure(roc: dict[str, dict[str, list[float]]], aucs: dict[str, float | None]) -> go.Figure:
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "#bbb"},
                               showlegend=False, hoverinfo="skip"))
    for name, points in roc.items():
        auc = aucs.get(name)
        fig.add_trace(go.Scatter(x=points["fpr"], y=points["tpr"], mode="lines",
                                 name=f"{name} (AUC {auc:.3f})" if auc is not None else name))
    fig.update_layout(height=360, margin={"l": 10, "r": 10, "t": 30, "b": 10}, title="ROC",
                      xaxis_title="1 − specificity", yaxis_title="sensitivity")
    return fig


def confusion_figure(matrix: list[list[int]], classes: list[str]) -> go.Figure:
    fig = px.imshow(matrix, x=classes, y=classes, text_auto=True, color_continuous_scale="Blues",
                    labels={"x": "predicted", "y": "true", "color": "images"})
    fig.update_layout(height=360, margin={"l": 10, "r": 10, "t": 30, "b": 10}, title="Confusion matrix")
    return fig


def reliability_figure(bins: dict[str, list], ece: float | None) -> go.Figure:
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "#bbb"},
                               name="perfect calibration"))
    fig.add_trace(go.Scatter(x=bins["confidence"], y=bins["accuracy"], mode="lines+markers", name="model",
                             text=[f"{n} images" for n in bins["count"]]))
    title = "Reliability" + (f" (ECE {ece:.3f})" if ece is not None else "")
    fig.update_layout(height=360, margin={"l": 10, "r": 10, "t": 30, "b": 10}, title=title,
                      xaxis_title="confidence", yaxis_title="observed accuracy")
    return fig
