"""Figures from DataFrames; pure (no database, no session state)."""
from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

COLOR_COLUMNS = {"current label": "label", "predicted class": "predicted", "uncertainty (entropy)": "entropy",
                 "teacher–student disagreement": "disagreement", "split": "split", "label status": "status"}


def umap_scatter(frame: pd.DataFrame, color_by: str) -> go.Figure:
    """WebGL scatter (stays responsive at 50k points); hover shows id, label, prediction and scores."""
    column = COLOR_COLUMNS[color_by]
    continuous = column in ("entropy", "disagreement")
    fig = px.scatter(frame, x="x", y="y", color=column, render_mode="webgl",
                     custom_data=["image_id"], color_continuous_scale="Viridis" if continuous else None,
                     hover_data={"image_id": True, "label": True, "predicted": True, "entropy": ":.3f",
                                 "x": False, "y": False})
    fig.update_traces(marker={"size": 5, "opacity": 0.8})
    fig.update_layout(height=620, margin={"l": 10, "r": 10, "t": 30, "b": 10}, dragmode="lasso",
                      xaxis={"visible": False}, yaxis={"visible": False}, legend_title_text=color_by)
    return fig
