"""A page that fails shows one line; its traceback goes to MEDSSL_HOME/logs/app.log (issue 12)."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from app.text import md
from engine.data.library_logs import append_traceback


def show_page_error(logs_dir: Path, error: BaseException) -> None:
    """The one line a user sees (Streamlit's own script-control exceptions never get here: BaseException)."""
    where = append_traceback(Path(logs_dir) / "app.log", error, header="page error")
    reason = " ".join(str(error).split()) or type(error).__name__
    st.error(f"This page stopped: {md(reason)}" + (f" (details in {md(where)})" if where else ""))
