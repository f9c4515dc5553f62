"""An import's report on the page (file, upload and PACS imports share it): never a green banner over a warning."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from app.text import md
from engine.data.report import ImportReport


def show_report(report: ImportReport) -> None:
    good = report.imported and not report.warnings  # a warning (e.g. no labels found) is never a green banner
    (st.success if good else st.warning)(md(report.summary().splitlines()[0]))
    if report.rejected:
        st.dataframe(pd.DataFrame([{"file": r.name, "reason": r.reason} for r in report.rejected]),
                     hide_index=True, width="stretch")
    for warning in report.warnings:
        st.info(md(warning))
    if report.skipped:
        st.caption(md(f"Skipped {len(report.skipped)} files that are not images: " + ", ".join(report.skipped[:30])
                      + (" …" if len(report.skipped) > 30 else "")))
