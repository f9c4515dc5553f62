"""The chart library starts loading on the session's first page (app/widgets/prefetch.py), once."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _page() -> None:
    import streamlit as st

    from app.widgets.prefetch import prefetch_chart_library

    st.write("a page without charts")
    prefetch_chart_library()


def test_first_run_draws_one_empty_chart_in_the_sidebar_and_later_runs_none() -> None:
    at = AppTest.from_function(_page, default_timeout=30).run()
    assert not at.exception
    assert len(at.sidebar.get("plotly_chart")) == 1
    at.run()
    assert not at.exception and len(at.sidebar.get("plotly_chart")) == 0
