"""Entry point: `python -m streamlit run app/main.py`. Page config, login, sidebar (account, project), navigation."""
from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere: find app/, db/, engine/

from app import state
from app.auth import account_sidebar, require_login
from app.errors import show_page_error
from app.exposure import current_problem
from app.keyboard import keep_shortcuts_alive
from app.navigation import pages
from app.resources import get_store
from app.url_state import last_project, remember_project, show_project, url_project
from app.widgets.prefetch import prefetch_chart_library
from app.worker_control import ensure_worker
from db.projects import list_projects


def sidebar(user) -> None:
    """Account, then the project switcher (the URL's project, else this user's last one, else the most
    recently used)."""
    account_sidebar(user)
    annotator = user.name
    with get_store().sessions.begin() as session:
        choices = {p.id: p.name for p in list_projects(session)}
        current = state.get(state.PROJECT)
        if current not in choices:
            current = next((c for c in (url_project(), last_project(session, annotator)) if c in choices), None)
    if choices:
        ids = list(choices)
        index = ids.index(current) if current in choices else 0
        picked = st.sidebar.selectbox("project", ids, index=index, format_func=choices.get)
        if picked != state.get(state.PROJECT):
            if state.get(state.PROJECT) is not None:
                state.drop(state.CURRENT_IMAGE)
            with get_store().sessions.begin() as session:
                remember_project(session, annotator, picked)
        state.put(state.PROJECT, picked)
        show_project(picked)
    st.sidebar.caption(ensure_worker(get_store()))
    st.sidebar.caption("Research use only — not for clinical diagnosis.")


st.set_page_config(page_title="MedSSL Studio", layout="wide")
keep_shortcuts_alive()
problem = current_problem()
if problem:
    st.error(problem)
    st.stop()
user = require_login()
if user is None:
    st.stop()
sidebar(user)
prefetch_chart_library()
navigation = st.navigation(list(pages(user).values()))
try:
    navigation.run()
except Exception as error:  # noqa: BLE001 - one line on the page, the traceback in logs/app.log
    show_page_error(get_store().config.logs_dir, error)
