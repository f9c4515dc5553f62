"""Start loading the chart library on the session's first page, whatever that page is.

Plotly's browser script (4.7 MB) loads the first time a page of the session shows a chart: measured in
Chromium on the dev VM, that made the first visit to Relations or Models & metrics take 2.5–3.4 s, against
0.45–0.6 s once the script was there (docs/BENCHMARKS.md, page_speed). An empty static chart, 10 px tall (Plotly's least) at
the bottom of the sidebar, on the session's first run makes the browser fetch and compile the script while
the user reads the first page; later runs do not draw it.
"""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

PREFETCHED = "prefetch.chart_library"


def prefetch_chart_library() -> None:
    if st.session_state.get(PREFETCHED):
        return
    st.session_state[PREFETCHED] = True
    fig = go.Figure()
    fig.update_layout(height=10, margin={"l": 0, "r": 0, "t": 0, "b": 0}, xaxis={"visible": False},
                      yaxis={"visible": False}, paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)")
    st.sidebar.plotly_chart(fig, config={"staticPlot": True, "displayModeBar": False}, key="prefetch_chart")
