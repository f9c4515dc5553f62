"""A page that fails shows one line; its traceback goes to MEDSSL_HOME/logs/app.log (issue 12)."""
from __future__ import annotations

import datetime as dt
import traceback
from pathlib import Path

import streamlit as st

from app.text import md


def log_page_error(logs_dir: Path, error: BaseException) -> Path | None:
    path = Path(logs_dir) / "app.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as fh:
            fh.write(f"--- {dt.datetime.now().isoformat(timespec='seconds')}\n")
            fh.write("".join(traceback.format_exception(error)))
    except OSError:
        return None
    return path


def show_page_error(logs_dir: Path, error: BaseException) -> None:
    """The one line a user sees (Streamlit's own script-control exceptions never get here: BaseException)."""
    where = log_page_error(logs_dir, error)
    reason = " ".join(str(error).split()) or type(error).__name__
    st.error(f"This page stopped: {md(reason)}" + (f" (details in {md(where)})" if where else ""))
