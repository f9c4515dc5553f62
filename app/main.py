"""Entry point: `python -m streamlit run app/main.py`. Page config, navigation, research-use notice."""
from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere: find app/, db/, engine/

from app.views import projects  # noqa: E402

st.set_page_config(page_title="MedSSL Studio", layout="wide")
st.sidebar.caption("Research use only — not for clinical diagnosis.")
navigation = st.navigation([st.Page(projects.render, title="Projects", url_path="projects", default=True)])
navigation.run()
