"""The URL carries the project (and the case on Label), so a link or a reload opens the same view.

Without a project in the URL the app opens the project this annotator used last (a reload once switched to
the most recently *created* project); the choice is remembered per annotator in the setting table.
"""
from __future__ import annotations

import streamlit as st
from sqlalchemy.orm import Session

from db.settings import get_setting, set_setting

PROJECT_PARAM = "project"
IMAGE_PARAM = "image"


def _int_param(name: str) -> int | None:
    raw = st.query_params.get(name)
    return int(raw) if raw is not None and str(raw).isdigit() else None


def url_project() -> int | None:
    return _int_param(PROJECT_PARAM)


def url_image() -> int | None:
    return _int_param(IMAGE_PARAM)


def show_project(project_id: int) -> None:
    if st.query_params.get(PROJECT_PARAM) != str(project_id):
        st.query_params[PROJECT_PARAM] = str(project_id)


def show_image(image_id: int | None) -> None:
    if image_id is None:
        st.query_params.pop(IMAGE_PARAM, None)
    elif st.query_params.get(IMAGE_PARAM) != str(image_id):
        st.query_params[IMAGE_PARAM] = str(image_id)


def _key(annotator: str) -> str:
    return f"last_project:{annotator}"


def last_project(session: Session, annotator: str) -> int | None:
    value = get_setting(session, _key(annotator))
    return int(value) if isinstance(value, int) else None


def remember_project(session: Session, annotator: str, project_id: int) -> None:
    if last_project(session, annotator) != project_id:
        set_setting(session, _key(annotator), int(project_id))
