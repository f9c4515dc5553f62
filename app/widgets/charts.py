"""Figures from DataFrames; pure (no database, no session state). The Explore map is in umap_map."""
from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from app.palette import colour_map
from app.text import html


def relation_graph(center: int, nodes: pd.DataFrame, edges: pd.DataFrame, classes: list[str] | None = None
                   ) -> go.Figure:
    """Star-and-mesh graph of a case and its neighbours: nodes coloured by label, edge width = similarity.

    nodes: image_id, label, x, y (layout positions); edges: source, target, similarity (within nodes).
    """
    position = nodes.set_index("image_id")[["x", "y"]]
    fig = go.Figure()
    for edge in edges.itertuples():
        (x0, y0), (x1, y1) = position.loc[edge.source], position.loc[edge.target]
        fig.add_trace(go.Scatter(x=[x0, x1], y=[y0, y1], mode="lines", hoverinfo="skip", showlegend=False,
                                 line={"width": max(0.5, 8 * float(edge.similarity) ** 4), "color": "#9aa5b1"}))
    colours = colour_map(list(classes or []), sorted(str(v) for v in nodes["label"].unique()))
    for label, group in nodes.groupby("label"):
        fig.add_trace(go.Scatter(x=group["x"], y=group["y"], mode="markers+text", name=html(label),
                                 text=[str(i) for i in group["image_id"]], textposition="top center",
                                 marker={"size": [26 if i == center else 16 for i in group["image_id"]],
                                         "color": colours[str(label)], "line": {"width": 1, "color": "white"}},
                                 customdata=group[["image_id"]], hovertemplate="image %{customdata[0]}<extra>"
                                 + html(label).replace("%", "%%") + "</extra>"))
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
    classes = [html(c) for c in classes]  # user text: axis ticks render Plotly's HTML subset
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
